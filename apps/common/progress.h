// Progress of a training run on the console: one line rewritten in place on a terminal
// (epoch, step/steps, loss, top-1, images/s, ETA), plain periodic lines otherwise (a log file,
// a pipe, CI), every `print_freq` steps.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>

namespace ember::app {

class Progress {
 public:
  // `terminal`: rewrite one line with '\r'; otherwise print a line every print_freq steps.
  // is_terminal(stream) is the usual answer.
  Progress(std::FILE* out, bool terminal, int print_freq, int64_t epochs);

  static bool is_terminal(std::FILE* stream);

  void start_epoch(int64_t epoch, int64_t steps);  // epoch is 1-based
  // After each training step: the running averages of the epoch so far (top-1 as a fraction in
  // [0, 1], NaN when not measured) and the number of images in this step (the batch size).
  // `step` is 1-based. On a terminal the line is redrawn at most 10 times a second, and always
  // for the first and the last step.
  void step(int64_t step, double average_loss, double average_top1, int64_t images);
  // Ends the epoch's line with a summary (e.g. "test 71.3% (top-5 97.9%), 12.4 s").
  void end_epoch(const std::string& summary);

  // "1:02:03", "4:05", "12s"
  static std::string format_duration(double seconds);

 private:
  std::FILE* out_;
  bool terminal_;
  int print_freq_;
  int64_t epochs_;
  int64_t epoch_ = 0, steps_ = 0, images_ = 0;
  std::chrono::steady_clock::time_point epoch_start_;
  size_t last_width_ = 0;
  // What the last step reported, repeated by end_epoch.
  int64_t step_ = 0;
  double loss_ = NAN, top1_ = NAN;
  std::chrono::steady_clock::time_point last_drawn_;

  // "loss 1.2345  top-1 54.3%  1234 img/s" for the epoch so far.
  std::string figures() const;
  // Writes `line` over the terminal's current line (padded to hide a longer previous one).
  void redraw(const std::string& line);
};

}  // namespace ember::app
