#include "apps/common/progress.h"

#include <unistd.h>  // isatty

#include <algorithm>

#include "engine/error.h"

namespace ember::app {

namespace {

double seconds_between(std::chrono::steady_clock::time_point from,
                       std::chrono::steady_clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

int digits(int64_t n) {
  int count = 1;
  for (; n >= 10; n /= 10) ++count;
  return count;
}

}  // namespace

Progress::Progress(std::FILE* out, bool terminal, int print_freq, int64_t epochs)
    : out_(out), terminal_(terminal), print_freq_(print_freq), epochs_(epochs) {
  EMBER_CHECK(out != nullptr, "Progress: no stream to write to");
  EMBER_CHECK(print_freq >= 1, "--print-freq must be at least 1, got ", print_freq);
}

bool Progress::is_terminal(std::FILE* stream) {
  return stream != nullptr && isatty(fileno(stream)) == 1;
}

std::string Progress::format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const long long total = std::llround(seconds);
  const long long hours = total / 3600, minutes = total / 60 % 60, rest = total % 60;
  char text[48];
  if (hours > 0)
    std::snprintf(text, sizeof text, "%lld:%02lld:%02lld", hours, minutes, rest);
  else if (minutes > 0)
    std::snprintf(text, sizeof text, "%lld:%02lld", minutes, rest);
  else
    std::snprintf(text, sizeof text, "%llds", rest);
  return text;
}

void Progress::start_epoch(int64_t epoch, int64_t steps) {
  epoch_ = epoch;
  steps_ = steps;
  images_ = 0;
  step_ = 0;
  loss_ = top1_ = NAN;
  epoch_start_ = last_drawn_ = std::chrono::steady_clock::now();
}

std::string Progress::figures() const {
  char number[64];
  std::snprintf(number, sizeof number, "loss %.4f", loss_);
  std::string text = number;
  if (!std::isnan(top1_)) {
    std::snprintf(number, sizeof number, "  top-1 %.1f%%", top1_ * 100);
    text += number;
  }
  const double elapsed = seconds_between(epoch_start_, std::chrono::steady_clock::now());
  if (images_ > 0 && elapsed > 0) {
    std::snprintf(number, sizeof number, "  %.0f img/s", static_cast<double>(images_) / elapsed);
    text += number;
  }
  return text;
}

void Progress::redraw(const std::string& line) {
  std::string padded = line;
  // Spaces over whatever the previous, longer line left on the screen.
  if (padded.size() < last_width_) padded.append(last_width_ - padded.size(), ' ');
  std::fprintf(out_, "\r%s", padded.c_str());
  std::fflush(out_);
  last_width_ = line.size();
}

void Progress::step(int64_t step, double average_loss, double average_top1, int64_t images) {
  step_ = step;
  loss_ = average_loss;
  top1_ = average_top1;
  images_ += images;
  const bool last = steps_ > 0 && step >= steps_;
  const auto now = std::chrono::steady_clock::now();
  std::string eta;
  if (steps_ > 0 && step > 0) {
    const double per_step = seconds_between(epoch_start_, now) / static_cast<double>(step);
    eta = "  ETA " +
          format_duration(per_step * static_cast<double>(std::max<int64_t>(0, steps_ - step)));
  }
  if (terminal_) {
    // A terminal redraws the line: more often than the eye can follow would only cost time.
    if (step != 1 && !last && seconds_between(last_drawn_, now) < 0.1) return;
    last_drawn_ = now;
    const std::string of_steps = steps_ > 0 ? str_cat("/", steps_) : "";
    redraw(
        str_cat("epoch ", epoch_, "/", epochs_, "  step ", step, of_steps, "  ", figures(), eta));
    return;
  }
  if (step % print_freq_ != 0 && !last) return;
  // The layout of PyTorch's ImageNet example: "Epoch: [3][ 40/196]", steps right-aligned.
  char position[96];
  if (steps_ > 0)
    std::snprintf(position, sizeof position, "Epoch: [%lld/%lld][%*lld/%lld]",
                  static_cast<long long>(epoch_), static_cast<long long>(epochs_), digits(steps_),
                  static_cast<long long>(step), static_cast<long long>(steps_));
  else
    std::snprintf(position, sizeof position, "Epoch: [%lld/%lld][%lld]",
                  static_cast<long long>(epoch_), static_cast<long long>(epochs_),
                  static_cast<long long>(step));
  std::fprintf(out_, "%s  %s%s\n", position, figures().c_str(), eta.c_str());
  std::fflush(out_);
}

void Progress::end_epoch(const std::string& summary) {
  const std::string trained = step_ > 0 ? "  " + figures() : "";
  const std::string rest = summary.empty() ? "" : "  " + summary;
  if (terminal_) {
    redraw(str_cat("epoch ", epoch_, "/", epochs_, trained, rest));
    std::fputc('\n', out_);
    last_width_ = 0;
  } else {
    std::fprintf(out_, "Epoch: [%lld/%lld] done%s%s\n", static_cast<long long>(epoch_),
                 static_cast<long long>(epochs_), trained.c_str(), rest.c_str());
  }
  std::fflush(out_);
}

}  // namespace ember::app
