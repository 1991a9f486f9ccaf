// MemoryStore and PrefixStore (see store.h).
#include "dist/store.h"

#include <charconv>

#include "engine/error.h"

namespace ember::dist {

Bytes to_bytes(const std::string& text) {
  return Bytes(text.begin(), text.end());
}
std::string to_string(const Bytes& bytes) {
  return std::string(bytes.begin(), bytes.end());
}

int64_t parse_counter(const std::string& key, const Bytes& value) {
  const std::string text = to_string(value);
  int64_t n = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), n);
  EMBER_CHECK(error == std::errc() && end == text.data() + text.size() && !text.empty(),
              "store: key '", key, "' holds '", text.substr(0, 40), "', not an integer counter");
  return n;
}

namespace {

std::string join_keys(const std::vector<std::string>& keys) {
  std::string out;
  for (const auto& key : keys) out += (out.empty() ? "'" : ", '") + key + "'";
  return out;
}

}  // namespace

void MemoryStore::set(const std::string& key, const Bytes& value) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    values_[key] = value;
  }
  changed_.notify_all();
}

Bytes MemoryStore::get(const std::string& key) {
  wait({key}, timeout_);
  std::lock_guard<std::mutex> lock(mutex_);
  return values_.at(key);
}

int64_t MemoryStore::add(const std::string& key, int64_t delta) {
  int64_t result = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = values_.find(key);
    result = (it == values_.end() ? 0 : parse_counter(key, it->second)) + delta;
    values_[key] = to_bytes(std::to_string(result));
  }
  changed_.notify_all();
  return result;
}

bool MemoryStore::check(const std::vector<std::string>& keys) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& key : keys)
    if (!values_.count(key)) return false;
  return true;
}

void MemoryStore::wait(const std::vector<std::string>& keys, Milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  auto all_there = [&] {
    for (const auto& key : keys)
      if (!values_.count(key)) return false;
    return true;
  };
  if (changed_.wait_for(lock, timeout, all_there)) return;
  std::vector<std::string> missing;
  for (const auto& key : keys)
    if (!values_.count(key)) missing.push_back(key);
  throw TimeoutError(
      str_cat("store: timed out after ", timeout.count(), " ms waiting for ", join_keys(missing)));
}

PrefixStore::PrefixStore(std::string prefix, std::shared_ptr<Store> base)
    : prefix_(std::move(prefix)), base_(std::move(base)) {
  timeout_ = base_->timeout();
}

std::vector<std::string> PrefixStore::full(const std::vector<std::string>& keys) const {
  std::vector<std::string> out;
  out.reserve(keys.size());
  for (const auto& key : keys) out.push_back(full(key));
  return out;
}

void PrefixStore::set(const std::string& key, const Bytes& value) {
  base_->set(full(key), value);
}

Bytes PrefixStore::get(const std::string& key) {
  base_->wait({full(key)}, timeout_);
  return base_->get(full(key));
}

int64_t PrefixStore::add(const std::string& key, int64_t delta) {
  return base_->add(full(key), delta);
}

bool PrefixStore::check(const std::vector<std::string>& keys) {
  return base_->check(full(keys));
}

void PrefixStore::wait(const std::vector<std::string>& keys, Milliseconds timeout) {
  base_->wait(full(keys), timeout);
}

}  // namespace ember::dist
