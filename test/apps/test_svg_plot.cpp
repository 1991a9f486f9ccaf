// The SVG line charts: well-formed XML, data mapped to the pixels the layout promises, nice
// ticks, NaN gaps, escaping, the legend's place and the two plots of a run.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>  // system
#include <filesystem>
#include <random>
#include <regex>
#include <set>

#include "apps/common/svg_plot.h"
#include "temporary_files.h"

using namespace ember;
using namespace ember::app;
using ember::test::contains;
using ember::test::error_of;
using ember::test::read_file;
using ember::test::TemporaryDirectory;

// Pixel coordinates are written with two decimals.
#define CHECK_PIXEL(actual, expected) \
  CHECK_MESSAGE(std::abs((actual) - (expected)) <= 0.006, (actual), " is not ", (expected))

namespace {

// ---- a small XML well-formedness check (elements nest, attributes quoted, entities known) ----

bool valid_entity(const std::string& text, size_t& i) {
  const size_t end = text.find(';', i);
  if (end == std::string::npos) return false;
  const std::string name = text.substr(i + 1, end - i - 1);
  static const std::set<std::string> named = {"amp", "lt", "gt", "quot", "apos"};
  const bool ok = named.count(name) || std::regex_match(name, std::regex("#[0-9]+|#x[0-9a-fA-F]+"));
  i = end;
  return ok;
}

// "" when `text` is one well-formed XML element (after an optional <?xml ...?>), else what is
// wrong and where.
std::string xml_problem(const std::string& text) {
  std::vector<std::string> open;
  int roots = 0;
  size_t i = 0;
  if (text.compare(0, 5, "<?xml") == 0) i = text.find("?>") + 2;
  const auto is_name = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == ':' || c == '_' ||
           c == '.';
  };
  while (i < text.size()) {
    const char c = text[i];
    if (c == '&') {
      if (!valid_entity(text, i)) return "bad entity at " + std::to_string(i);
      ++i;
      continue;
    }
    if (c == '>') return "stray '>' at " + std::to_string(i);
    if (c != '<') {
      if (open.empty() && !std::isspace(static_cast<unsigned char>(c)))
        return "text outside the root at " + std::to_string(i);
      ++i;
      continue;
    }
    if (text.compare(i, 4, "<!--") == 0) {
      i = text.find("-->", i);
      if (i == std::string::npos) return "unclosed comment";
      i += 3;
      continue;
    }
    if (text.compare(i, 2, "</") == 0) {
      size_t j = i + 2;
      while (j < text.size() && is_name(text[j])) ++j;
      const std::string name = text.substr(i + 2, j - i - 2);
      if (open.empty() || open.back() != name) return "</" + name + "> closes nothing open";
      open.pop_back();
      if (j >= text.size() || text[j] != '>') return "bad end tag </" + name;
      i = j + 1;
      continue;
    }
    size_t j = i + 1;
    while (j < text.size() && is_name(text[j])) ++j;
    const std::string name = text.substr(i + 1, j - i - 1);
    if (name.empty()) return "'<' without a name at " + std::to_string(i);
    std::set<std::string> attributes;
    while (true) {
      while (j < text.size() && std::isspace(static_cast<unsigned char>(text[j]))) ++j;
      if (j >= text.size()) return "unclosed <" + name;
      if (text[j] == '>' || text.compare(j, 2, "/>") == 0) break;
      const size_t start = j;
      while (j < text.size() && is_name(text[j])) ++j;
      const std::string attribute = text.substr(start, j - start);
      if (attribute.empty() || j + 1 >= text.size() || text[j] != '=' ||
          (text[j + 1] != '"' && text[j + 1] != '\''))
        return "bad attribute in <" + name + "> at " + std::to_string(start);
      if (!attributes.insert(attribute).second) return "attribute " + attribute + " twice";
      const char quote = text[j + 1];
      j += 2;
      while (j < text.size() && text[j] != quote) {
        if (text[j] == '<') return "'<' in attribute " + attribute;
        if (text[j] == '&' && !valid_entity(text, j)) return "bad entity in " + attribute;
        ++j;
      }
      ++j;
    }
    if (open.empty() && ++roots > 1) return "a second root element <" + name + ">";
    if (text[j] == '>') {
      open.push_back(name);
      i = j + 1;
    } else {
      i = j + 2;
    }
  }
  if (!open.empty()) return "<" + open.back() + "> never closed";
  return roots == 1 ? "" : "no root element";
}

// ---- reading the pieces of a chart back ----

struct Box {
  double x, y, width, height;
};

double attribute(const std::string& element, const std::string& name) {
  std::smatch match;
  REQUIRE(std::regex_search(element, match, std::regex(" " + name + "=\"([-0-9.]+)\"")));
  return std::stod(match[1]);
}

Box box_of(const std::string& svg, const std::string& prefix) {
  size_t at = svg.find(prefix);
  REQUIRE(at != std::string::npos);
  at = svg.rfind('<', at + prefix.size() - 1);  // the last element the prefix opens
  const std::string element = svg.substr(at, svg.find('>', at) - at);
  return {attribute(element, "x"), attribute(element, "y"), attribute(element, "width"),
          attribute(element, "height")};
}

Box plot_area(const std::string& svg) {
  return box_of(svg, "<rect class=\"plot-area\"");
}

using Points = std::vector<std::pair<double, double>>;

std::vector<Points> polylines(const std::string& svg) {
  std::vector<Points> lines;
  const std::regex polyline("<polyline points=\"([^\"]*)\"");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), polyline);
       it != std::sregex_iterator(); ++it) {
    Points points;
    std::istringstream in((*it)[1].str());
    std::string pair;
    while (in >> pair) {
      const size_t comma = pair.find(',');
      points.emplace_back(std::stod(pair.substr(0, comma)), std::stod(pair.substr(comma + 1)));
    }
    lines.push_back(points);
  }
  return lines;
}

size_t count(const std::string& text, const std::string& part) {
  size_t n = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

// The tick labels of one axis ("x-ticks" or "y-ticks"), in order.
std::vector<std::string> tick_labels(const std::string& svg, const std::string& axis) {
  const size_t begin = svg.find("<g class=\"" + axis + "\"");
  REQUIRE(begin != std::string::npos);
  const std::string group = svg.substr(begin, svg.find("</g>", begin) - begin);
  std::vector<std::string> labels;
  const std::regex text(">([^<]*)</text>");
  for (auto it = std::sregex_iterator(group.begin(), group.end(), text);
       it != std::sregex_iterator(); ++it)
    labels.push_back((*it)[1]);
  return labels;
}

Series series(std::string label, std::vector<double> x, std::vector<double> y) {
  Series s;
  s.label = std::move(label);
  s.x = std::move(x);
  s.y = std::move(y);
  return s;
}

std::vector<double> one_to(int n) {
  std::vector<double> values;
  for (int i = 1; i <= n; ++i) values.push_back(i);
  return values;
}

// x = 1..10, y = 0.0, 0.1, ..., 0.9.
Chart rising_chart() {
  std::vector<double> y;
  for (int i = 0; i < 10; ++i) y.push_back(i / 10.0);
  return Chart{"rising", "epoch", "value", {series("rising", one_to(10), y)}};
}

}  // namespace

TEST_CASE("the xml check used here finds broken documents") {
  CHECK(xml_problem("<a x=\"1\"><b/>t &amp; u</a>") == "");
  CHECK(xml_problem("<a><b></a>") != "");
  CHECK(xml_problem("<a>1 < 2</a>") != "");
  CHECK(xml_problem("<a>R&D</a>") != "");
  CHECK(xml_problem("<a x=1/>") != "");
  CHECK(xml_problem("<a/><b/>") != "");
  CHECK(xml_problem("<a y=\"\"\"/>") != "");
}

TEST_CASE("a chart is a well-formed svg document") {
  const std::string svg = render_svg(rising_chart());
  CHECK(xml_problem(svg) == "");
  CHECK(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"720\" height=\"440\"", 0) ==
        0);
  // Python's own XML parser agrees, where there is a Python.
  if (std::filesystem::exists("/usr/bin/python3")) {
    TemporaryDirectory dir;
    write_svg(dir.file("chart.svg"), rising_chart());
    CHECK(read_file(dir.file("chart.svg")) == svg);
    const std::string command =
        "/usr/bin/python3 -c \"import sys, xml.dom.minidom; "
        "xml.dom.minidom.parse(sys.argv[1])\" " +
        dir.file("chart.svg");
    CHECK(std::system(command.c_str()) == 0);
  }
}

TEST_CASE("data map linearly onto the plot area") {
  const std::string svg = render_svg(rising_chart());
  const Box area = plot_area(svg);
  // x: the data range 1..10 widened by 2% of 9 at each end, [0.82, 10.18]. y: 0..0.9 widened by
  // 4% (0.036) gives [-0.036, 0.936]; the low end stops at 0 (no data below), and rounding out
  // to the tick step 0.2 (0.936 / 6 = 0.156 rounded up to a nice step) gives [0, 1].
  const auto x_pixel = [&](double x) { return area.x + (x - 0.82) / 9.36 * area.width; };
  const auto y_pixel = [&](double y) { return area.y + area.height - y * area.height; };
  const std::vector<Points> lines = polylines(svg);
  REQUIRE(lines.size() == 1);
  REQUIRE(lines[0].size() == 10);
  for (int i : {0, 4, 9}) {
    CHECK_PIXEL(lines[0][i].first, x_pixel(i + 1));
    CHECK_PIXEL(lines[0][i].second, y_pixel(i / 10.0));
  }
  CHECK(lines[0][0].second == doctest::Approx(area.y + area.height).epsilon(1e-4));
  CHECK(lines[0][9].second == doctest::Approx(area.y + 0.1 * area.height).epsilon(1e-4));
  // Ticks: whole epochs 2 apart on x, steps of 0.2 on y, from the bottom to the top.
  CHECK(tick_labels(svg, "x-ticks") == std::vector<std::string>{"2", "4", "6", "8", "10"});
  CHECK(tick_labels(svg, "y-ticks") ==
        std::vector<std::string>{"0.0", "0.2", "0.4", "0.6", "0.8", "1.0"});
  // The grid line of y = 0.6 is where 0.6 maps.
  char grid_line[96];
  std::snprintf(grid_line, sizeof grid_line, "y1=\"%.2f\"", y_pixel(0.6));
  CHECK(contains(svg, grid_line));
  // Ten points are few: each has its marker, in the series' colour (Okabe-Ito blue).
  CHECK(count(svg, "<circle ") == 10);
  CHECK(contains(svg, "stroke=\"#0072B2\""));
  CHECK(contains(svg, ">epoch</text>"));
  CHECK(contains(svg, ">value</text>"));
}

TEST_CASE("nice ticks are 1 2 or 5 times a power of ten and cover the range") {
  CHECK(nice_ticks(0, 1) == std::vector<double>{0, 0.2, 0.4, 0.6000000000000001, 0.8, 1});
  CHECK(nice_ticks(0.13, 0.87) == std::vector<double>{0.2, 0.4, 0.6000000000000001, 0.8});
  CHECK(nice_ticks(1, 90, 6, true) == std::vector<double>{20, 40, 60, 80});
  CHECK(nice_ticks(1, 5, 6, true) == std::vector<double>{1, 2, 3, 4, 5});
  CHECK(nice_ticks(1, 3, 6, true) == std::vector<double>{1, 2, 3});  // never half an epoch
  CHECK(nice_ticks(-3, 3) == std::vector<double>{-3, -2, -1, 0, 1, 2, 3});
  CHECK(nice_step(0, 1000) == 200);
  CHECK(nice_step(0, 0.003) == doctest::Approx(0.0005));
  CHECK(nice_ticks(2, 1).empty());
  CHECK(nice_ticks(NAN, 1).empty());

  std::mt19937 random(7);
  std::uniform_real_distribution<double> exponent(-6, 6), unit(-1, 1);
  for (int trial = 0; trial < 2000; ++trial) {
    const double scale = std::pow(10.0, exponent(random));
    double low = unit(random) * scale, high = unit(random) * scale;
    if (low > high) std::swap(low, high);
    if (high - low < scale * 1e-3) continue;
    const double step = nice_step(low, high);
    const double mantissa = step / std::pow(10.0, std::floor(std::log10(step) + 1e-12));
    const bool nice = std::abs(mantissa - 1) < 1e-9 || std::abs(mantissa - 2) < 1e-9 ||
                      std::abs(mantissa - 5) < 1e-9 || std::abs(mantissa - 10) < 1e-9;
    CHECK_MESSAGE(nice, "step ", step, " for [", low, ", ", high, "]");
    const std::vector<double> ticks = nice_ticks(low, high);
    REQUIRE(ticks.size() >= 2);
    CHECK(ticks.size() <= 7);
    CHECK(ticks.front() >= low - step * 1e-6);
    CHECK(ticks.back() <= high + step * 1e-6);
    CHECK(ticks.front() - low < step * (1 + 1e-9));  // no gap wider than a step at either end
    CHECK(high - ticks.back() < step * (1 + 1e-9));
    for (size_t i = 1; i < ticks.size(); ++i)
      CHECK(ticks[i] - ticks[i - 1] == doctest::Approx(step).epsilon(1e-9));
  }
}

TEST_CASE("fractional x values get decimal ticks and the y ticks cover the padded data") {
  Chart chart{"", "x", "y", {series("s", {0.5, 0.75, 1.0, 1.25}, {3, 9, 12, 17})}};
  const std::string svg = render_svg(chart);
  CHECK(tick_labels(svg, "x-ticks") ==
        std::vector<std::string>{"0.5", "0.6", "0.7", "0.8", "0.9", "1.0", "1.1", "1.2"});
  // 3..17 widened by 0.56 each side, rounded out to steps of 5: 0..20.
  CHECK(tick_labels(svg, "y-ticks") == std::vector<std::string>{"0", "5", "10", "15", "20"});
  CHECK(!contains(svg, "class=\"title\""));
  CHECK(xml_problem(svg) == "");
}

TEST_CASE("NaN values break a series into separate polylines") {
  Chart chart{
      "gaps", "epoch", "loss", {series("train", one_to(9), {1, 2, NAN, 3, 4, NAN, NAN, 5, NAN})}};
  const std::string svg = render_svg(chart);
  const std::vector<Points> lines = polylines(svg);
  REQUIRE(lines.size() == 2);
  CHECK(lines[0].size() == 2);
  CHECK(lines[1].size() == 2);
  // The lone point 5 has no line but keeps its marker; five markers in all.
  CHECK(count(svg, "<circle ") == 5);
  CHECK(!contains(svg, "nan"));
  CHECK(!contains(svg, "inf"));
  CHECK(xml_problem(svg) == "");
}

TEST_CASE("long series have no markers but a lone point between gaps keeps one") {
  std::vector<double> y;
  for (int i = 0; i < 50; ++i) y.push_back(i == 20 || i == 22 ? NAN : std::sin(i / 5.0));
  const std::string svg = render_svg(Chart{"", "", "", {series("s", one_to(50), y)}});
  CHECK(polylines(svg).size() == 2);
  CHECK(count(svg, "<circle ") == 1);  // index 21
}

TEST_CASE("text is escaped for xml everywhere") {
  const std::string nasty = "a < b & \"c\" 'd' > e";
  Chart chart{nasty, nasty, nasty, {series(nasty, {1, 2}, {1, 2})}};
  const std::string svg = render_svg(chart);
  CHECK(xml_problem(svg) == "");
  CHECK(!contains(svg, nasty));
  CHECK(count(svg, "a &lt; b &amp; &quot;c&quot; &apos;d&apos; &gt; e") == 5);  // + data-label
  CHECK(xml_escape("<&>\"'") == "&lt;&amp;&gt;&quot;&apos;");
  CHECK(xml_escape(std::string("bell\x07")) == "bell ");
  CHECK(xml_escape("plain") == "plain");
}

TEST_CASE("constant and single-point series do not divide by zero") {
  const std::string constant =
      render_svg(Chart{"", "", "", {series("flat", one_to(5), {0.5, 0.5, 0.5, 0.5, 0.5})}});
  CHECK(!contains(constant, "nan"));
  CHECK(!contains(constant, "inf"));
  CHECK(xml_problem(constant) == "");
  // 0.5 ± 10% rounded out to steps of 0.02: the line lies in the middle of the plot.
  const Box area = plot_area(constant);
  const std::vector<Points> lines = polylines(constant);
  REQUIRE(lines.size() == 1);
  for (const auto& point : lines[0]) CHECK_PIXEL(point.second, area.y + area.height / 2);

  const std::string single = render_svg(Chart{"", "", "", {series("one", {3}, {7})}});
  CHECK(!contains(single, "nan"));
  CHECK(polylines(single).empty());
  const Box single_area = plot_area(single);
  std::smatch match;
  REQUIRE(
      std::regex_search(single, match, std::regex("<circle cx=\"([-0-9.]+)\" cy=\"([-0-9.]+)\"")));
  CHECK_PIXEL(std::stod(match[1]), single_area.x + single_area.width / 2);
  CHECK_PIXEL(std::stod(match[2]), single_area.y + single_area.height / 2);
  CHECK(tick_labels(single, "x-ticks") == std::vector<std::string>{"3"});

  const std::string zero = render_svg(Chart{"", "", "", {series("zero", {1, 2}, {0, 0})}});
  CHECK(!contains(zero, "nan"));
  CHECK(xml_problem(zero) == "");
}

TEST_CASE("a chart without data draws its axes and says so") {
  for (const Chart& chart :
       {Chart{"empty", "epoch", "loss", {}},
        Chart{"all NaN", "epoch", "loss", {series("s", {1, 2}, {NAN, NAN})}}}) {
    const std::string svg = render_svg(chart);
    CHECK(contains(svg, ">no data</text>"));
    CHECK(contains(svg, "class=\"plot-area\""));
    CHECK(!tick_labels(svg, "x-ticks").empty());
    CHECK(polylines(svg).empty());
    CHECK(!contains(svg, "nan"));
    CHECK(xml_problem(svg) == "");
  }
  CHECK(!contains(render_svg(rising_chart()), "no data"));
}

TEST_CASE("series with different x and y lengths are an error naming them") {
  CHECK(contains(error_of([] {
                   render_svg(Chart{"c", "", "", {series("train", {1, 2}, {1})}});
                 }),
                 "series \"train\" has 2 x values but 1 y values"));
}

TEST_CASE("the legend goes where there is no data or else beside the plot") {
  // A rising line leaves the bottom right corner empty: the legend sits there, on white.
  const std::string rising = render_svg(rising_chart());
  const Box area = plot_area(rising);
  const Box legend = box_of(rising, "<g class=\"legend\">\n<rect");
  CHECK(legend.x + legend.width <= area.x + area.width);
  CHECK(legend.y + legend.height <= area.y + area.height);
  CHECK(legend.y > area.y + area.height / 2);
  const std::vector<Points> lines = polylines(rising);
  for (const auto& [x, y] : lines.at(0))
    CHECK(!(x >= legend.x && x <= legend.x + legend.width && y >= legend.y &&
            y <= legend.y + legend.height));
  CHECK(contains(rising, "fill=\"white\" fill-opacity"));

  // A zigzag fills every corner: the legend stands to the right of the plot area.
  std::vector<double> zigzag;
  for (int i = 0; i < 40; ++i) zigzag.push_back(i % 2);
  Chart zigzag_chart{"", "", "", {series("zigzag", one_to(40), zigzag)}};
  zigzag_chart.y_max_limit = 1;  // the axis ends at the peaks
  const std::string full = render_svg(zigzag_chart);
  const Box full_area = plot_area(full);
  const Box outside = box_of(full, "<g class=\"legend\">\n<rect");
  CHECK(outside.x > full_area.x + full_area.width);
  // The picture grows wider for it; the plot area keeps its size.
  CHECK(full_area.x + full_area.width == doctest::Approx(700));  // 20 pixels short of 720
  std::smatch width;
  REQUIRE(std::regex_search(full, width, std::regex("<svg [^>]*width=\"([0-9.]+)\"")));
  CHECK(std::stod(width[1]) > 720);
  CHECK(outside.x + outside.width <= std::stod(width[1]));

  // Without labels there is no legend.
  CHECK(!contains(render_svg(Chart{"", "", "", {series("", {1, 2}, {1, 2})}}), "class=\"legend\""));
}

TEST_CASE("colours follow the palette or the series' own choice and dashes show") {
  Series a = series("a", {1, 2}, {1, 2}), b = series("b", {1, 2}, {2, 1}),
         c = series("c", {1, 2}, {1, 1});
  c.colour = 0;
  c.dashed = true;
  const std::string svg = render_svg(Chart{"", "", "", {a, b, c}});
  const std::regex stroke("<polyline [^>]*stroke=\"(#[0-9A-F]{6})\"([^>]*)>");
  std::vector<std::string> colours, rests;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), stroke); it != std::sregex_iterator();
       ++it) {
    colours.push_back((*it)[1]);
    rests.push_back((*it)[2]);
  }
  CHECK(colours == std::vector<std::string>{"#0072B2", "#D55E00", "#0072B2"});
  CHECK(!contains(rests[0], "dasharray"));
  CHECK(contains(rests[2], "stroke-dasharray"));
}

TEST_CASE("a run's plots show its losses and accuracies in percent, unmeasured sets left out") {
  std::vector<EpochRecord> records;
  for (int e = 1; e <= 4; ++e) {
    EpochRecord r;
    r.epoch = e;
    r.train_loss = 2.0 / e;
    r.test_loss = 2.2 / e;
    r.train_acc = 0.5 + 0.1 * e;
    r.test_acc = 0.45 + 0.1 * e;
    r.test_acc5 = e == 2 ? NAN : 0.8 + 0.04 * e;
    records.push_back(r);
  }
  TemporaryDirectory dir;
  write_run_plots(dir.path.string(), records, "cifar10 resnet18");
  CHECK(dir.entries() == std::vector<std::string>{"accuracy.svg", "loss.svg"});
  const std::string loss = read_file(dir.file("loss.svg"));
  const std::string accuracy = read_file(dir.file("accuracy.svg"));
  CHECK(xml_problem(loss) == "");
  CHECK(xml_problem(accuracy) == "");
  CHECK(contains(loss, ">cifar10 resnet18: loss</text>"));
  CHECK(contains(loss, "data-label=\"train\""));
  CHECK(contains(loss, "data-label=\"test\""));
  CHECK(!contains(loss, "data-label=\"val\""));  // no validation set
  CHECK(contains(accuracy, ">cifar10 resnet18: accuracy</text>"));
  CHECK(contains(accuracy, ">accuracy (%)</text>"));
  for (const char* label : {"train top-1", "test top-1", "test top-5"})
    CHECK(contains(accuracy, std::string("data-label=\"") + label + "\""));
  CHECK(!contains(accuracy, "data-label=\"val top-1\""));
  // Percent: the data 55..96 pad and round out to [50, 100] in steps of 10, never past 100.
  CHECK(tick_labels(accuracy, "y-ticks") ==
        std::vector<std::string>{"50", "60", "70", "80", "90", "100"});
  // test top-5 is dashed, in test top-1's colour, and broken where epoch 2 has no value.
  const size_t top5 = accuracy.find("data-label=\"test top-5\"");
  const std::string top5_group = accuracy.substr(top5, accuracy.find("</g>", top5) - top5);
  CHECK(contains(top5_group, "stroke-dasharray"));
  CHECK(contains(top5_group, "stroke=\"#009E73\""));
  CHECK(polylines(top5_group).size() == 1);  // epochs 3-4; epoch 1 stands alone
  CHECK(count(top5_group, "<circle ") == 3);
}
