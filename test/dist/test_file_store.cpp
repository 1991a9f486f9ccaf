// FileStore: the Store operations on a file, several stores on one file, waiting for keys set
// later, timeouts naming the keys, and add() atomic across processes (forked children).
#include <doctest/doctest.h>
#include <sys/wait.h>  // waitpid
#include <unistd.h>    // fork, _exit

#include <chrono>
#include <fstream>
#include <thread>
#include <vector>

#include "dist/file_store.h"
#include "temporary_files.h"

using namespace ember;
using namespace ember::dist;
using ember::test::contains;
using ember::test::error_of;
using std::chrono::milliseconds;

TEST_CASE("file store set get add and check") {
  test::TemporaryDirectory dir;
  FileStore store(dir.file("store"), milliseconds(2000));
  store.set("greeting", to_bytes("hello"));
  CHECK(to_string(store.get("greeting")) == "hello");
  store.set("greeting", to_bytes(std::string("re\0placed", 9)));
  CHECK(store.get("greeting") == to_bytes(std::string("re\0placed", 9)));
  CHECK(store.add("counter", 4) == 4);
  CHECK(store.add("counter", -1) == 3);
  CHECK(store.check({"greeting", "counter"}));
  CHECK_FALSE(store.check({"greeting", "absent"}));
  store.set("empty", {});
  CHECK(store.get("empty").empty());
  store.set("text", to_bytes("abc"));
  const std::string message = error_of([&] { store.add("text", 1); });
  CHECK(contains(message, "'text'"));
  CHECK(contains(message, "not an integer"));

  // A second store on the same file sees everything.
  FileStore other(dir.file("store"), milliseconds(2000));
  CHECK(to_string(other.get("counter")) == "3");
  CHECK(other.add("counter", 10) == 13);
  CHECK(to_string(store.get("counter")) == "13");
}

TEST_CASE("file store wait returns when another store sets the keys") {
  test::TemporaryDirectory dir;
  FileStore waiting(dir.file("store"), milliseconds(5000));
  const auto start = std::chrono::steady_clock::now();
  std::thread setter([path = dir.file("store")] {
    FileStore writer(path);
    std::this_thread::sleep_for(milliseconds(150));
    writer.set("a", to_bytes("1"));
    writer.add("b", 1);
  });
  waiting.wait({"a", "b"}, milliseconds(5000));
  CHECK(to_string(waiting.get("a")) == "1");
  setter.join();
  const double waited =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(waited >= 0.1);
  CHECK(waited < 3.0);
}

TEST_CASE("file store timeouts name the missing keys and the file") {
  test::TemporaryDirectory dir;
  FileStore store(dir.file("store"), milliseconds(200));
  store.set("present", to_bytes("1"));
  std::string message;
  try {
    store.wait({"present", "missing"}, milliseconds(200));
  } catch (const TimeoutError& e) {
    message = e.what();
  }
  CHECK(contains(message, "'missing'"));
  CHECK_FALSE(contains(message, "'present'"));
  CHECK(contains(message, dir.file("store")));
  CHECK(contains(error_of([&] { store.get("never"); }), "'never'"));
}

TEST_CASE("file store add is atomic across processes") {
  test::TemporaryDirectory dir;
  const std::string path = dir.file("store");
  constexpr int kChildren = 4, kAdds = 50;
  std::vector<pid_t> children;
  for (int c = 0; c < kChildren; ++c) {
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      int code = 0;
      try {
        FileStore store(path, milliseconds(5000));
        for (int i = 0; i < kAdds; ++i) store.add("counter", 1);
        store.add("finished", 1);
      } catch (...) {
        code = 1;
      }
      _exit(code);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  FileStore store(path, milliseconds(2000));
  CHECK(to_string(store.get("counter")) == std::to_string(kChildren * kAdds));
  CHECK(to_string(store.get("finished")) == std::to_string(kChildren));
}

TEST_CASE("file store errors name the file") {
  test::TemporaryDirectory dir;
  CHECK(contains(error_of([&] { FileStore store(dir.file("no/such/folder/store")); }),
                 "no/such/folder/store"));
  // A file that is not a store (or a record cut short) is reported, not read as garbage.
  std::ofstream(dir.file("not_a_store")) << "hello";
  FileStore store(dir.file("not_a_store"), milliseconds(100));
  const std::string message = error_of([&] { store.check({"k"}); });
  CHECK(contains(message, "not_a_store"));
  CHECK(contains(message, "truncated record"));
}
