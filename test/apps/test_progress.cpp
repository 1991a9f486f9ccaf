// The console progress of a run: the line redrawn in place on a terminal, plain periodic lines
// elsewhere, and durations.
#include <doctest/doctest.h>
#include <fcntl.h>   // O_RDWR, O_NOCTTY
#include <stdlib.h>  // posix_openpt, grantpt, unlockpt, ptsname
#include <unistd.h>  // close

#include <chrono>
#include <cstdio>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "apps/common/progress.h"
#include "temporary_files.h"

using namespace ember;
using namespace ember::app;
using ember::test::contains;
using ember::test::error_of;

namespace {

// Everything written to a FILE* by `body`, through an in-memory stream.
template <typename Body>
std::string captured(Body&& body) {
  char* buffer = nullptr;
  size_t size = 0;
  std::FILE* stream = open_memstream(&buffer, &size);
  REQUIRE(stream != nullptr);
  body(stream);
  std::fclose(stream);
  std::string text(buffer, size);
  std::free(buffer);
  return text;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  size_t begin = 0;
  for (size_t end = text.find('\n'); end != std::string::npos; end = text.find('\n', begin)) {
    lines.push_back(text.substr(begin, end - begin));
    begin = end + 1;
  }
  if (begin < text.size()) lines.push_back(text.substr(begin));
  return lines;
}

void pause_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

}  // namespace

TEST_CASE("durations read as hours minutes and seconds") {
  CHECK(Progress::format_duration(0) == "0s");
  CHECK(Progress::format_duration(12) == "12s");
  CHECK(Progress::format_duration(12.4) == "12s");
  CHECK(Progress::format_duration(59.4) == "59s");
  CHECK(Progress::format_duration(59.6) == "1:00");
  CHECK(Progress::format_duration(245) == "4:05");
  CHECK(Progress::format_duration(3599) == "59:59");
  CHECK(Progress::format_duration(3600) == "1:00:00");
  CHECK(Progress::format_duration(3723) == "1:02:03");
  CHECK(Progress::format_duration(36000 + 61) == "10:01:01");
  CHECK(Progress::format_duration(NAN) == "?");
  CHECK(Progress::format_duration(-1) == "?");
  CHECK(Progress::format_duration(INFINITY) == "?");
}

TEST_CASE("off a terminal progress prints a plain line every print_freq steps and the last") {
  const std::string text = captured([](std::FILE* out) {
    Progress progress(out, false, 2, 90);
    progress.start_epoch(3, 5);
    for (int step = 1; step <= 5; ++step) progress.step(step, 1.23456 / step, 0.543, 128);
    progress.end_epoch("test 71.3% (top-5 97.9%), 12.4 s");
  });
  CHECK(!contains(text, "\r"));
  const std::vector<std::string> lines = lines_of(text);
  REQUIRE(lines.size() == 4);
  CHECK(lines[0].rfind("Epoch: [3/90][2/5]  loss 0.6173  top-1 54.3%  ", 0) == 0);
  CHECK(lines[1].rfind("Epoch: [3/90][4/5]  loss 0.3086  top-1 54.3%  ", 0) == 0);
  CHECK(lines[2].rfind("Epoch: [3/90][5/5]  loss 0.2469  top-1 54.3%  ", 0) == 0);
  const std::regex rest(".* \\d+ img/s  ETA \\d+s");
  for (int i = 0; i < 3; ++i) CHECK(std::regex_match(lines[i], rest));
  CHECK(contains(lines[2], "ETA 0s"));
  CHECK(lines[3].rfind("Epoch: [3/90] done  loss 0.2469  top-1 54.3%  ", 0) == 0);
  CHECK(contains(lines[3], "img/s  test 71.3% (top-5 97.9%), 12.4 s"));
  CHECK(text.back() == '\n');
}

TEST_CASE("step numbers line up under the epoch's step count") {
  const std::string text = captured([](std::FILE* out) {
    Progress progress(out, false, 40, 10);
    progress.start_epoch(1, 196);
    for (int step = 1; step <= 80; ++step) progress.step(step, 2.0, NAN, 256);
  });
  const std::vector<std::string> lines = lines_of(text);
  REQUIRE(lines.size() == 2);
  CHECK(lines[0].rfind("Epoch: [1/10][ 40/196]  loss 2.0000  ", 0) == 0);
  CHECK(lines[1].rfind("Epoch: [1/10][ 80/196]  loss 2.0000  ", 0) == 0);
  CHECK(!contains(text, "top-1"));  // not measured
}

TEST_CASE("on a terminal progress redraws one line and clears what a longer one left") {
  const std::string text = captured([](std::FILE* out) {
    Progress progress(out, true, 1000, 2);
    progress.start_epoch(1, 3);
    progress.step(1, 123456789012.0, 0.1, 64);  // a long line
    progress.step(2, 1.5, 0.2, 64);             // within 0.1 s of the first: not drawn
    progress.step(3, 1.25, 0.5, 64);            // the last: always drawn
    progress.end_epoch("test 50.0%");
    progress.start_epoch(2, 3);
    progress.step(1, 1.0, 0.6, 64);
  });
  // Every draw starts with '\r'; only end_epoch ends a line.
  const std::vector<std::string> lines = lines_of(text);
  REQUIRE(lines.size() == 2);
  std::vector<std::string> draws;
  size_t begin = 0;
  while ((begin = lines[0].find('\r', begin)) != std::string::npos) {
    const size_t end = lines[0].find('\r', begin + 1);
    draws.push_back(lines[0].substr(begin + 1, end == std::string::npos ? end : end - begin - 1));
    begin = begin + 1;
  }
  // Step 2 came too soon after step 1 to be drawn (unless the machine stalled in between).
  if (draws.size() == 4 && draws[1].rfind("epoch 1/2  step 2/3", 0) == 0)
    draws.erase(draws.begin() + 1);
  REQUIRE(draws.size() == 3);
  CHECK(draws[0].rfind("epoch 1/2  step 1/3  loss 123456789012.0000  top-1 10.0%  ", 0) == 0);
  CHECK(draws[1].rfind("epoch 1/2  step 3/3  loss 1.2500  top-1 50.0%  ", 0) == 0);
  CHECK(contains(draws[1], "ETA 0s"));
  // The shorter second line is padded with spaces to the length of the first.
  CHECK(draws[1].size() >= draws[0].size());
  CHECK(draws[1].back() == ' ');
  CHECK(draws[2].rfind("epoch 1/2  loss 1.2500  top-1 50.0%  ", 0) == 0);
  CHECK(contains(draws[2], "img/s  test 50.0%"));
  CHECK(lines[1].rfind("\repoch 2/2  step 1/3  loss 1.0000  top-1 60.0%", 0) == 0);
}

TEST_CASE("on a terminal the line is redrawn again once a tenth of a second has passed") {
  const std::string text = captured([](std::FILE* out) {
    Progress progress(out, true, 1, 1);
    progress.start_epoch(1, 100000);
    for (int step = 1; step <= 1000; ++step) progress.step(step, 1, NAN, 1);
    pause_ms(120);
    progress.step(1001, 1, NAN, 1);
  });
  // A thousand steps in a few milliseconds are drawn a handful of times, not a thousand.
  size_t draws = 0;
  for (char c : text) draws += c == '\r';
  CHECK(draws >= 2);
  CHECK(draws < 20);
  CHECK(contains(text, "step 1/100000"));
  CHECK(contains(text, "step 1001/100000"));
}

TEST_CASE("images per second and the ETA come from the time the epoch has taken") {
  const std::string text = captured([](std::FILE* out) {
    Progress progress(out, false, 1, 1);
    progress.start_epoch(1, 101);
    pause_ms(100);
    progress.step(1, 1, NAN, 100);  // 100 images in at least 0.1 s
  });
  std::smatch match;
  REQUIRE(std::regex_search(text, match, std::regex("  (\\d+) img/s  ETA (\\d+)s")));
  const int rate = std::stoi(match[1]);
  CHECK(rate <= 1000);
  CHECK(rate >= 200);  // even on a busy machine
  // 100 more steps at the same pace: 10 s, a little more if the machine was slow.
  const int eta = std::stoi(match[2]);
  CHECK(eta >= 10);
  CHECK(eta <= 50);
}

TEST_CASE("an epoch without steps still ends with its summary") {
  const std::string text = captured([](std::FILE* out) {
    Progress progress(out, false, 10, 5);
    progress.start_epoch(5, 0);
    progress.end_epoch("test 10.0%");
  });
  CHECK(text == "Epoch: [5/5] done  test 10.0%\n");
}

TEST_CASE("print_freq below 1 is an error naming the flag") {
  CHECK(contains(error_of([] { Progress(stdout, false, 0, 1); }),
                 "--print-freq must be at least 1, got 0"));
}

TEST_CASE("is_terminal tells a terminal from a file") {
  std::FILE* file = std::tmpfile();
  REQUIRE(file != nullptr);
  CHECK(!Progress::is_terminal(file));
  std::fclose(file);
  // A pseudo-terminal is a terminal; containers without /dev/pts cannot make one.
  const int master = posix_openpt(O_RDWR | O_NOCTTY);
  if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) {
    MESSAGE("no pseudo-terminal here: only the file case is checked");
    if (master >= 0) close(master);
    return;
  }
  std::FILE* terminal = std::fopen(ptsname(master), "w");
  REQUIRE(terminal != nullptr);
  CHECK(Progress::is_terminal(terminal));
  std::fclose(terminal);
  close(master);
}
