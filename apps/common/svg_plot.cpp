// The chart is laid out in pixels of a 720 × 440 picture:
//
//   +----------------------------------------------------+
//   |                       title                        |
//   |  y   +-------------------------------------------+ |
//   |  l   | plot area: grid, one polyline per series  | |
//   |  a   |                              +----------+ | |
//   |  b   |                              |  legend  | | |
//   |  e   |                              +----------+ | |
//   |  l   +-------------------------------------------+ |
//   |       x ticks          x label                     |
//   +----------------------------------------------------+
//
// The legend goes into the first corner of the plot area where it covers no data (top right,
// bottom right, top left, bottom left). When every corner holds data it stands to the right of
// the plot area instead, and the picture grows wider by its width.
//
// Data map to pixels linearly: x from the smallest to the largest x of the data, widened by 2%
// at each end; y from the lowest to the highest tick, which is the data range widened by 4% at
// each end and rounded outwards to the tick step (never across zero, never past the chart's y
// limits).
#include "apps/common/svg_plot.h"

#include <algorithm>
#include <cctype>  // islower, isdigit
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <tuple>

#include "datasets/archive.h"  // write_file_atomically, read_file_bytes
#include "engine/error.h"

namespace ember::app {

namespace fs = std::filesystem;

namespace {

constexpr double kWidth = 720, kHeight = 440;
constexpr double kFontSize = 12, kTitleSize = 15, kLabelSize = 13;
constexpr int kMostMarkedPoints = 30;  // series with more points are drawn without circles
constexpr size_t kLongestLegendLabel = 40;

// Okabe and Ito's palette for colour-blind readers (yellow, hard to see on white, comes last).
const char* const kPalette[] = {"#0072B2", "#D55E00", "#009E73", "#E69F00",
                                "#CC79A7", "#56B4E9", "#000000", "#F0E442"};
constexpr int kPaletteSize = sizeof kPalette / sizeof kPalette[0];

// An estimate of the width of `text` in a sans-serif font (DejaVu Sans, a little generous): SVG
// cannot measure text, and the layout only needs to leave room for it. Widths in ems by kind of
// character; anything outside ASCII counts as a capital.
double text_width(const std::string& text, double font_size) {
  double ems = 0;
  for (unsigned char c : text) {
    if ((c & 0xC0) == 0x80) continue;  // a UTF-8 continuation byte
    if (c == ' ' || c == '.' || c == ',' || c == ':' || c == ';' || c == '\'' || c == '|' ||
        c == 'i' || c == 'j' || c == 'l' || c == '!')
      ems += 0.32;
    else if (c == 'f' || c == 't' || c == 'r' || c == '(' || c == ')' || c == '[' || c == ']' ||
             c == '-' || c == '/')
      ems += 0.42;
    else if (std::islower(c) || std::isdigit(c))
      ems += c == 'm' || c == 'w' ? 0.92 : 0.64;
    else
      ems += 0.76;
  }
  return ems * font_size;
}

std::string number(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f", value);
  return text;
}

// Tick labels show as many decimals as the step needs: 0.2 -> "0.4", 0.05 -> "0.15", 20 -> "40".
std::string tick_label(double value, double step) {
  const int decimals = std::max(0, static_cast<int>(std::ceil(-std::log10(step) - 1e-9)));
  char text[32];
  std::snprintf(text, sizeof text, "%.*f", decimals, value == 0 ? 0.0 : value);
  return text;
}

struct Range {
  double low, high;
};

std::string legend_text(const std::string& label) {
  if (label.size() <= kLongestLegendLabel) return label;
  size_t cut = kLongestLegendLabel - 1;
  while (cut > 0 && (static_cast<unsigned char>(label[cut]) & 0xC0) == 0x80) --cut;
  return label.substr(0, cut) + "\u2026";
}

struct Rectangle {
  double left, top, width, height;
  bool contains(double x, double y) const {
    return x >= left && x <= left + width && y >= top && y <= top + height;
  }
};

class ChartDrawing {
 public:
  explicit ChartDrawing(const Chart& chart) : chart_(chart) {
    for (size_t s = 0; s < chart.series.size(); ++s) {
      const Series& series = chart.series[s];
      EMBER_CHECK(series.x.size() == series.y.size(), "chart \"", chart.title, "\": series \"",
                  series.label, "\" has ", series.x.size(), " x values but ", series.y.size(),
                  " y values");
      for (size_t i = 0; i < series.x.size(); ++i) {
        if (!std::isfinite(series.x[i]) || !std::isfinite(series.y[i])) continue;
        if (!has_data_) x_ = {series.x[i], series.x[i]}, y_ = {series.y[i], series.y[i]};
        has_data_ = true;
        x_ = {std::min(x_.low, series.x[i]), std::max(x_.high, series.x[i])};
        y_ = {std::min(y_.low, series.y[i]), std::max(y_.high, series.y[i])};
        integer_x_ = integer_x_ && series.x[i] == std::round(series.x[i]);
      }
      if (!series.label.empty()) legend_.push_back(s);
    }
    if (has_data_) {
      choose_axes();
    } else {  // empty axes from 0 to 1
      x_ = y_ = {0, 1};
      x_step_ = y_step_ = 0.2;
      x_ticks_ = y_ticks_ = nice_ticks(0, 1);
    }
  }

  std::string svg() {
    lay_out();
    std::string out;
    out += str_cat("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"", width_, "\" height=\"",
                   height_, "\" viewBox=\"0 0 ", width_, " ", height_,
                   "\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"",
                   kFontSize, "\">\n");
    out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
    if (!chart_.title.empty())
      out += str_cat("<text class=\"title\" x=\"", number(plot_.left + plot_.width / 2),
                     "\" y=\"26\" font-size=\"", kTitleSize,
                     "\" font-weight=\"bold\" text-anchor=\"middle\">", xml_escape(chart_.title),
                     "</text>\n");
    draw_axes(out);
    draw_series(out);
    draw_legend(out);
    out += "</svg>\n";
    return out;
  }

 private:
  void choose_axes() {
    if (x_.low == x_.high) {  // one x value: centre it
      const double pad = integer_x_ ? 0.5 : (x_.low == 0 ? 1 : std::abs(x_.low) * 0.1);
      x_ = {x_.low - pad, x_.high + pad};
    }
    // A little room at both ends, so that the first and last markers clear the frame.
    const double x_pad = (x_.high - x_.low) * 0.02;
    x_ = {x_.low - x_pad, x_.high + x_pad};
    // The x axis is wider than the y axis is tall: room for a few more ticks.
    x_ticks_ = nice_ticks(x_.low, x_.high, 8, integer_x_);
    x_step_ = nice_step(x_.low, x_.high, 8, integer_x_);

    Range data = y_;
    Range padded = data;
    if (data.low == data.high) {
      const double pad = data.low == 0 ? 1 : std::abs(data.low) * 0.1;
      padded = {data.low - pad, data.high + pad};
    } else {
      const double pad = (data.high - data.low) * 0.04;
      padded = {data.low - pad, data.high + pad};
    }
    // Losses and accuracies are never negative: padding must not invent negative values.
    if (data.low >= 0 && padded.low < 0) padded.low = 0;
    if (data.high <= 0 && data.low < 0 && padded.high > 0) padded.high = 0;
    y_step_ = nice_step(padded.low, padded.high, 6);
    y_ = {std::floor(padded.low / y_step_ + 1e-9) * y_step_,
          std::ceil(padded.high / y_step_ - 1e-9) * y_step_};
    if (!std::isnan(chart_.y_min_limit))
      y_.low = std::max(y_.low, std::min(chart_.y_min_limit, data.low));
    if (!std::isnan(chart_.y_max_limit))
      y_.high = std::min(y_.high, std::max(chart_.y_max_limit, data.high));
    // Whole multiples of the step, at both ends of the axis (unless a limit cut it).
    for (double k = std::ceil(y_.low / y_step_ - 1e-9); k * y_step_ <= y_.high + y_step_ * 1e-9;
         ++k)
      y_ticks_.push_back(k * y_step_);
  }

  double x_pixel(double x) const {
    return plot_.left + (x - x_.low) / (x_.high - x_.low) * plot_.width;
  }
  double y_pixel(double y) const {
    return plot_.top + plot_.height - (y - y_.low) / (y_.high - y_.low) * plot_.height;
  }

  // The plot area and the legend's place.
  void lay_out() {
    double widest_tick = 0;
    for (double y : y_ticks_)
      widest_tick = std::max(widest_tick, text_width(tick_label(y, y_step_), kFontSize));
    const double left = (chart_.y_label.empty() ? 14 : 34) + widest_tick + 8;
    const double top = chart_.title.empty() ? 20 : 44;
    const double bottom = chart_.x_label.empty() ? 32 : 52;
    plot_ = {left, top, kWidth - left - 20, kHeight - top - bottom};

    legend_width_ = 0;
    for (size_t s : legend_)
      legend_width_ =
          std::max(legend_width_, text_width(legend_text(chart_.series[s].label), kFontSize));
    legend_width_ += 10 + 28 + 6 + 10;
    legend_height_ = 8 + 18.0 * static_cast<double>(legend_.size()) + 2;
    if (legend_.empty()) return;

    const double gap = 10;
    const Rectangle corners[] = {
        {plot_.left + plot_.width - gap - legend_width_, plot_.top + gap, legend_width_,
         legend_height_},
        {plot_.left + plot_.width - gap - legend_width_,
         plot_.top + plot_.height - gap - legend_height_, legend_width_, legend_height_},
        {plot_.left + gap, plot_.top + gap, legend_width_, legend_height_},
        {plot_.left + gap, plot_.top + plot_.height - gap - legend_height_, legend_width_,
         legend_height_},
    };
    if (legend_width_ + 2 * gap < plot_.width / 2 && legend_height_ + 2 * gap < plot_.height) {
      for (const Rectangle& corner : corners) {
        if (!covers_data(corner)) {
          legend_box_ = corner;
          return;
        }
      }
    }
    // Every corner holds data: the legend stands to the right of the plot area, in a picture
    // widened for it (and made taller if the legend is taller than the plot area).
    legend_box_ = {plot_.left + plot_.width + 14, plot_.top, legend_width_, legend_height_};
    width_ = std::ceil(legend_box_.left + legend_box_.width + 16);
    height_ = std::max(height_, std::ceil(legend_box_.top + legend_box_.height + 16));
  }

  // Whether any line or marker would be under `box` (grown by a few pixels for the line width
  // and the markers).
  bool covers_data(const Rectangle& box) const {
    const Rectangle grown{box.left - 4, box.top - 4, box.width + 8, box.height + 8};
    for (const Series& series : chart_.series) {
      for (size_t i = 0; i < series.x.size(); ++i) {
        if (!std::isfinite(series.x[i]) || !std::isfinite(series.y[i])) continue;
        const double x0 = x_pixel(series.x[i]), y0 = y_pixel(series.y[i]);
        if (grown.contains(x0, y0)) return true;
        if (i + 1 >= series.x.size() || !std::isfinite(series.x[i + 1]) ||
            !std::isfinite(series.y[i + 1]))
          continue;
        const double x1 = x_pixel(series.x[i + 1]), y1 = y_pixel(series.y[i + 1]);
        // Points along the segment at most 2 pixels apart.
        const int samples = static_cast<int>(std::hypot(x1 - x0, y1 - y0) / 2) + 1;
        for (int k = 1; k <= samples; ++k) {
          const double t = static_cast<double>(k) / samples;
          if (grown.contains(x0 + t * (x1 - x0), y0 + t * (y1 - y0))) return true;
        }
      }
    }
    return false;
  }

  void draw_axes(std::string& out) const {
    const double right = plot_.left + plot_.width, bottom = plot_.top + plot_.height;
    out += "<g class=\"grid\" stroke=\"#e3e3e3\" stroke-width=\"1\">\n";
    for (double x : x_ticks_)
      out += str_cat("<line x1=\"", number(x_pixel(x)), "\" y1=\"", number(plot_.top), "\" x2=\"",
                     number(x_pixel(x)), "\" y2=\"", number(bottom), "\"/>\n");
    for (double y : y_ticks_)
      out += str_cat("<line x1=\"", number(plot_.left), "\" y1=\"", number(y_pixel(y)), "\" x2=\"",
                     number(right), "\" y2=\"", number(y_pixel(y)), "\"/>\n");
    out += "</g>\n";
    out += str_cat("<rect class=\"plot-area\" x=\"", number(plot_.left), "\" y=\"",
                   number(plot_.top), "\" width=\"", number(plot_.width), "\" height=\"",
                   number(plot_.height), "\" fill=\"none\" stroke=\"#555555\"/>\n");
    out += "<g class=\"x-ticks\" text-anchor=\"middle\" fill=\"#333333\">\n";
    for (double x : x_ticks_)
      out += str_cat("<line x1=\"", number(x_pixel(x)), "\" y1=\"", number(bottom), "\" x2=\"",
                     number(x_pixel(x)), "\" y2=\"", number(bottom + 5),
                     "\" stroke=\"#555555\"/><text x=\"", number(x_pixel(x)), "\" y=\"",
                     number(bottom + 18), "\">", tick_label(x, x_step_), "</text>\n");
    out += "</g>\n<g class=\"y-ticks\" text-anchor=\"end\" fill=\"#333333\">\n";
    for (double y : y_ticks_)
      out += str_cat("<line x1=\"", number(plot_.left - 5), "\" y1=\"", number(y_pixel(y)),
                     "\" x2=\"", number(plot_.left), "\" y2=\"", number(y_pixel(y)),
                     "\" stroke=\"#555555\"/><text x=\"", number(plot_.left - 8), "\" y=\"",
                     number(y_pixel(y) + 4), "\">", tick_label(y, y_step_), "</text>\n");
    out += "</g>\n";
    if (!chart_.x_label.empty())
      out += str_cat("<text class=\"x-label\" x=\"", number(plot_.left + plot_.width / 2),
                     "\" y=\"", number(bottom + 40), "\" font-size=\"", kLabelSize,
                     "\" text-anchor=\"middle\">", xml_escape(chart_.x_label), "</text>\n");
    if (!chart_.y_label.empty()) {
      const double middle = plot_.top + plot_.height / 2;
      out += str_cat("<text class=\"y-label\" x=\"18\" y=\"", number(middle), "\" font-size=\"",
                     kLabelSize, "\" text-anchor=\"middle\" transform=\"rotate(-90 18 ",
                     number(middle), ")\">", xml_escape(chart_.y_label), "</text>\n");
    }
    if (!has_data_)
      out +=
          str_cat("<text class=\"no-data\" x=\"", number(plot_.left + plot_.width / 2), "\" y=\"",
                  number(plot_.top + plot_.height / 2),
                  "\" font-size=\"16\" fill=\"#888888\" text-anchor=\"middle\">no data</text>\n");
  }

  std::string colour_of(size_t s) const {
    const int colour = chart_.series[s].colour >= 0 ? chart_.series[s].colour : static_cast<int>(s);
    return kPalette[colour % kPaletteSize];
  }

  void draw_series(std::string& out) const {
    out += str_cat("<defs><clipPath id=\"plot-clip\"><rect x=\"", number(plot_.left - 4), "\" y=\"",
                   number(plot_.top - 4), "\" width=\"", number(plot_.width + 8), "\" height=\"",
                   number(plot_.height + 8), "\"/></clipPath></defs>\n");
    out += "<g clip-path=\"url(#plot-clip)\">\n";
    for (size_t s = 0; s < chart_.series.size(); ++s) {
      const Series& series = chart_.series[s];
      const std::string colour = colour_of(s);
      out += str_cat("<g class=\"series\" data-label=\"", xml_escape(series.label), "\">\n");
      // Runs of consecutive finite points: each is one polyline (a lone point, only a marker).
      std::vector<std::vector<std::pair<double, double>>> runs(1);
      int points = 0;
      for (size_t i = 0; i < series.x.size(); ++i) {
        if (std::isfinite(series.x[i]) && std::isfinite(series.y[i])) {
          runs.back().emplace_back(x_pixel(series.x[i]), y_pixel(series.y[i]));
          ++points;
        } else if (!runs.back().empty()) {
          runs.emplace_back();
        }
      }
      for (const auto& run : runs) {
        if (run.size() < 2) continue;
        out += "<polyline points=\"";
        for (size_t i = 0; i < run.size(); ++i)
          out += str_cat(i ? " " : "", number(run[i].first), ",", number(run[i].second));
        out += str_cat("\" fill=\"none\" stroke=\"", colour,
                       "\" stroke-width=\"2\" stroke-linejoin=\"round\" stroke-linecap=\"round\"",
                       series.dashed ? " stroke-dasharray=\"7 4\"" : "", "/>\n");
      }
      for (const auto& run : runs) {
        if (points > kMostMarkedPoints && run.size() != 1) continue;
        for (const auto& [x, y] : run)
          out += str_cat("<circle cx=\"", number(x), "\" cy=\"", number(y), "\" r=\"3\" fill=\"",
                         colour, "\"/>\n");
      }
      out += "</g>\n";
    }
    out += "</g>\n";
  }

  void draw_legend(std::string& out) const {
    if (legend_.empty()) return;
    const Rectangle& box = legend_box_;
    out += str_cat("<g class=\"legend\">\n<rect x=\"", number(box.left), "\" y=\"", number(box.top),
                   "\" width=\"", number(box.width), "\" height=\"", number(box.height),
                   "\" fill=\"white\" fill-opacity=\"0.9\" stroke=\"#bbbbbb\" rx=\"3\"/>\n");
    for (size_t row = 0; row < legend_.size(); ++row) {
      const size_t s = legend_[row];
      const double y = box.top + 8 + 18.0 * static_cast<double>(row) + 9;
      const double x = box.left + 10;
      out += str_cat("<line x1=\"", number(x), "\" y1=\"", number(y), "\" x2=\"", number(x + 28),
                     "\" y2=\"", number(y), "\" stroke=\"", colour_of(s), "\" stroke-width=\"2\"",
                     chart_.series[s].dashed ? " stroke-dasharray=\"7 4\"" : "", "/>\n");
      out += str_cat("<text x=\"", number(x + 34), "\" y=\"", number(y + 4), "\">",
                     xml_escape(legend_text(chart_.series[s].label)), "</text>\n");
    }
    out += "</g>\n";
  }

  const Chart& chart_;
  bool has_data_ = false, integer_x_ = true;
  Range x_{0, 1}, y_{0, 1};
  double x_step_ = 1, y_step_ = 1;
  std::vector<double> x_ticks_, y_ticks_;
  Rectangle plot_{}, legend_box_{};
  double legend_width_ = 0, legend_height_ = 0;
  double width_ = kWidth, height_ = kHeight;  // of the whole picture
  std::vector<size_t> legend_;                // the series with a label, in order
};

}  // namespace

double nice_step(double low, double high, int target_count, bool integers) {
  const double range = high - low;
  if (!(range > 0) || !std::isfinite(range)) return 1;
  const double raw = range / std::max(1, target_count);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = 10 * magnitude;
  for (double multiple : {1.0, 2.0, 5.0}) {
    if (multiple * magnitude >= raw * (1 - 1e-9)) {
      step = multiple * magnitude;
      break;
    }
  }
  return integers ? std::max(step, 1.0) : step;
}

std::vector<double> nice_ticks(double low, double high, int target_count, bool integers) {
  std::vector<double> ticks;
  if (!std::isfinite(low) || !std::isfinite(high) || high < low) return ticks;
  const double step = nice_step(low, high, target_count, integers);
  // Ticks as whole multiples of the step, so that 0.1 + 0.2 never shows as 0.30000000000000004.
  for (double k = std::ceil(low / step - 1e-9); k * step <= high + step * 1e-9; ++k)
    ticks.push_back(k * step == 0 ? 0.0 : k * step);
  return ticks;
}

std::string xml_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        // Control characters other than tab and newline are not allowed in XML 1.0 at all.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n')
          out += ' ';
        else
          out += c;
    }
  }
  return out;
}

std::string render_svg(const Chart& chart) {
  return ChartDrawing(chart).svg();
}

void write_svg(const std::string& path, const Chart& chart) {
  const std::string text = render_svg(chart);
  data::write_file_atomically(path, text.data(), text.size());
}

namespace {

std::vector<double> column(const std::vector<EpochRecord>& records, double EpochRecord::*field,
                           double scale = 1) {
  std::vector<double> values;
  for (const EpochRecord& r : records) values.push_back(r.*field * scale);
  return values;
}

std::vector<double> epochs(const std::vector<EpochRecord>& records) {
  std::vector<double> values;
  for (const EpochRecord& r : records) values.push_back(static_cast<double>(r.epoch));
  return values;
}

bool any_value(const std::vector<double>& values) {
  return std::any_of(values.begin(), values.end(), [](double v) { return std::isfinite(v); });
}

std::string with_title(const std::string& title, const std::string& what) {
  return title.empty() ? what : title + ": " + what;
}

}  // namespace

void write_run_plots(const std::string& folder, const std::vector<EpochRecord>& records,
                     const std::string& title) {
  const std::vector<double> x = epochs(records);
  const auto add = [&](Chart& chart, const std::string& label, double EpochRecord::*field,
                       double scale, int colour, bool dashed) {
    std::vector<double> y = column(records, field, scale);
    if (any_value(y)) chart.series.push_back({label, x, std::move(y), dashed, colour});
  };
  // The same colour for a set in both charts: train blue, validation vermillion, test green.
  Chart loss{with_title(title, "loss"), "epoch", "loss", {}};
  add(loss, "train", &EpochRecord::train_loss, 1, 0, false);
  add(loss, "val", &EpochRecord::val_loss, 1, 1, false);
  add(loss, "test", &EpochRecord::test_loss, 1, 2, false);
  Chart accuracy{with_title(title, "accuracy"), "epoch", "accuracy (%)", {}};
  accuracy.y_min_limit = 0;
  accuracy.y_max_limit = 100;
  add(accuracy, "train top-1", &EpochRecord::train_acc, 100, 0, false);
  add(accuracy, "val top-1", &EpochRecord::val_acc, 100, 1, false);
  add(accuracy, "test top-1", &EpochRecord::test_acc, 100, 2, false);
  add(accuracy, "test top-5", &EpochRecord::test_acc5, 100, 2, true);
  write_svg((fs::path(folder) / "loss.svg").string(), loss);
  write_svg((fs::path(folder) / "accuracy.svg").string(), accuracy);
}

// ---- overlays of several runs ----

namespace {

struct Metric {
  const char* name;
  const char* label;  // the y axis label
  double EpochRecord::*field;
  bool percent;
};

const std::vector<Metric>& column_metrics() {
  static const std::vector<Metric> metrics = {
      {"train_loss", "train loss", &EpochRecord::train_loss, false},
      {"val_loss", "validation loss", &EpochRecord::val_loss, false},
      {"test_loss", "test loss", &EpochRecord::test_loss, false},
      {"train_acc", "train top-1 accuracy (%)", &EpochRecord::train_acc, true},
      {"val_acc", "validation top-1 accuracy (%)", &EpochRecord::val_acc, true},
      {"test_acc", "test top-1 accuracy (%)", &EpochRecord::test_acc, true},
      {"test_acc5", "test top-5 accuracy (%)", &EpochRecord::test_acc5, true},
      {"epoch_s", "epoch time (s)", &EpochRecord::epoch_s, false},
      {"ms_per_step", "time per step (ms)", &EpochRecord::ms_per_step, false},
      {"rank_mean_test_acc", "mean of the ranks' own test top-1 (%)",
       &EpochRecord::rank_mean_test_acc, true},
      {"bytes_per_step", "payload bytes per step", &EpochRecord::bytes_per_step, false},
      {"comm_ms_per_step", "communication per step (ms)", &EpochRecord::comm_ms_per_step, false},
  };
  return metrics;
}

// The folder's own name, whatever the path looks like ("runs/a/", ".", "/x/runs/a").
std::string folder_name(const fs::path& folder) {
  fs::path normal = fs::absolute(folder).lexically_normal();
  if (normal.filename().empty()) normal = normal.parent_path();
  return normal.filename().string();
}

}  // namespace

const std::vector<std::string>& overlay_metrics() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> all;
    for (const Metric& m : column_metrics()) all.push_back(m.name);
    all.push_back("loss");
    all.push_back("acc");
    return all;
  }();
  return names;
}

RunCurves read_run(const std::string& run_folder_or_csv) {
  std::error_code ec;
  const fs::file_status status = fs::status(run_folder_or_csv, ec);
  if (!fs::exists(status)) throw Error(str_cat(run_folder_or_csv, ": no such folder or file"));
  RunCurves run;
  fs::path folder;
  if (fs::is_directory(status)) {
    folder = run_folder_or_csv;
    run.csv_path = (folder / "epochs.csv").string();
    if (!fs::exists(run.csv_path, ec))
      throw Error(str_cat(run_folder_or_csv, ": no epochs.csv in this folder"));
    run.name = folder_name(folder);
  } else {
    run.csv_path = run_folder_or_csv;
    folder = fs::absolute(run_folder_or_csv).parent_path();
    const fs::path file = fs::path(run_folder_or_csv).filename();
    run.name = file == "epochs.csv" ? folder_name(folder) : file.stem().string();
  }
  run.records = read_epoch_csv(run.csv_path);
  const fs::path summary = folder / "summary.json";
  if (fs::is_regular_file(summary, ec)) {
    const std::vector<uint8_t> bytes = data::read_file_bytes(summary.string());
    const nlohmann::json json = nlohmann::json::parse(bytes.begin(), bytes.end(), nullptr, false);
    if (json.is_discarded()) throw Error(str_cat(summary.string(), ": not valid JSON"));
    if (json.is_object() && json.contains("name") && json["name"].is_string() &&
        !json["name"].get<std::string>().empty())
      run.name = json["name"].get<std::string>();
  }
  return run;
}

Chart overlay_runs(const std::vector<RunCurves>& runs, const std::string& metric,
                   const std::string& title, std::vector<std::string>* runs_left_out) {
  const std::vector<std::string>& valid = overlay_metrics();
  if (std::find(valid.begin(), valid.end(), metric) == valid.end()) {
    std::string list;
    for (const std::string& name : valid) list += (list.empty() ? "" : ", ") + name;
    throw Error(str_cat("unknown metric \"", metric, "\": choose one of ", list));
  }
  const auto find_metric = [](const std::string& name) {
    for (const Metric& m : column_metrics())
      if (name == m.name) return m;
    throw Error(str_cat("no metric ", name));  // not reached: the names come from the table
  };
  // (metric, legend suffix, dashed) for each curve a run contributes.
  std::vector<std::tuple<Metric, std::string, bool>> curves;
  std::string what;
  bool percent = false;
  if (metric == "loss" || metric == "acc") {
    const bool loss = metric == "loss";
    curves.emplace_back(find_metric(loss ? "train_loss" : "train_acc"), " train", true);
    curves.emplace_back(find_metric(loss ? "test_loss" : "test_acc"), " test", false);
    what = loss ? "loss" : "top-1 accuracy (%)";
    percent = !loss;
  } else {
    const Metric m = find_metric(metric);
    curves.emplace_back(m, "", false);
    what = m.label;
    percent = m.percent;
  }

  // The default title is the axis label without its unit.
  const std::string unit = " (%)";
  const std::string plain = percent ? what.substr(0, what.size() - unit.size()) : what;
  Chart chart{title.empty() ? plain : title, "epoch", what, {}};
  if (percent) chart.y_min_limit = 0, chart.y_max_limit = 100;
  std::map<std::string, int> times_named;
  std::string files;
  for (size_t r = 0; r < runs.size(); ++r) {
    const RunCurves& run = runs[r];
    files += (files.empty() ? "" : ", ") + run.csv_path;
    // Two runs of the same name (the same folder name under different parents) stay apart.
    const int seen = ++times_named[run.name];
    const std::string name = seen == 1 ? run.name : str_cat(run.name, " (", seen, ")");
    bool drawn = false;
    for (const auto& [m, suffix, dashed] : curves) {
      std::vector<double> y = column(run.records, m.field, m.percent ? 100 : 1);
      if (!any_value(y)) continue;
      chart.series.push_back({name + suffix, epochs(run.records), std::move(y),
                              dashed && curves.size() > 1, static_cast<int>(r)});
      drawn = true;
    }
    if (!drawn && runs_left_out) runs_left_out->push_back(name);
  }
  if (chart.series.empty())
    throw Error(
        str_cat(metric, ": no values in any run (", files.empty() ? "no runs" : files, ")"));
  return chart;
}

}  // namespace ember::app
