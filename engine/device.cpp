#include "engine/device.h"

#include <cctype>  // std::isdigit

#include "engine/error.h"  // EMBER_CHECK

namespace ember {

Device Device::parse(const std::string& text) {
  if (text == "cpu") return cpu();
  if (text == "cuda") return cuda(0);
  const std::string prefix = "cuda:";
  if (text.rfind(prefix, 0) == 0 && text.size() > prefix.size()) {
    const std::string number = text.substr(prefix.size());
    bool digits = number.size() <= 4;
    for (char c : number) digits = digits && std::isdigit(static_cast<unsigned char>(c));
    if (digits) return cuda(std::stoi(number));
  }
  throw Error(str_cat("unknown device \"", text, "\": expected cpu, cuda or cuda:N"));
}

std::string Device::str() const {
  return is_cpu() ? std::string("cpu") : "cuda:" + std::to_string(index);
}

}  // namespace ember
