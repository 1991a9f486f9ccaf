#include "datasets/pickle.h"

#include <cstdio>   // snprintf
#include <cstring>  // memcpy
#include <unordered_map>

#include "engine/error.h"

namespace ember::data {

using Kind = PickleValue::Kind;

const PickleValue* PickleValue::get(const std::string& key) const {
  if (kind != Kind::Dict) return nullptr;
  const PickleValue* found = nullptr;
  for (size_t i = 0; i + 1 < items.size(); i += 2) {
    if (items[i]->is_string() && items[i]->bytes == key) found = items[i + 1];
  }
  return found;
}

std::vector<std::string> PickleValue::keys() const {
  std::vector<std::string> names;
  if (kind != Kind::Dict) return names;
  for (size_t i = 0; i + 1 < items.size(); i += 2)
    names.push_back(items[i]->is_string() ? items[i]->bytes : items[i]->describe());
  return names;
}

std::string PickleValue::describe() const {
  switch (kind) {
    case Kind::None:
      return "None";
    case Kind::Bool:
      return "bool";
    case Kind::Int:
      return "int";
    case Kind::Float:
      return "float";
    case Kind::Bytes:
      return str_cat("bytes of length ", bytes.size());
    case Kind::Text:
      return str_cat("str of length ", bytes.size());
    case Kind::Tuple:
      return str_cat("tuple of ", items.size());
    case Kind::List:
      return str_cat("list of ", items.size());
    case Kind::Dict:
      return str_cat("dict of ", items.size() / 2);
    case Kind::Array: {
      std::string dims;
      for (size_t i = 0; i < shape.size(); ++i) dims += str_cat(i ? ", " : "", shape[i]);
      if (shape.size() == 1) dims += ",";
      return str_cat("numpy array ", dtype, " (", dims, ")");
    }
    case Kind::DType:
      return str_cat("numpy dtype ", bytes);
    case Kind::Global:
      return bytes;
  }
  return "?";
}

namespace {

// The pickle opcodes this reader knows (the names are those of Python's pickletools).
enum Opcode : uint8_t {
  MARK = '(',
  STOP = '.',
  BININT = 'J',
  BININT1 = 'K',
  BININT2 = 'M',
  NONE = 'N',
  REDUCE = 'R',
  BINSTRING = 'T',
  SHORT_BINSTRING = 'U',
  BINUNICODE = 'X',
  APPEND = 'a',
  BUILD = 'b',
  GLOBAL = 'c',
  APPENDS = 'e',
  GET = 'g',
  BINGET = 'h',
  LONG_BINGET = 'j',
  EMPTY_LIST = ']',
  PUT = 'p',
  BINPUT = 'q',
  LONG_BINPUT = 'r',
  SETITEM = 's',
  TUPLE = 't',
  EMPTY_TUPLE = ')',
  SETITEMS = 'u',
  BINFLOAT = 'G',
  EMPTY_DICT = '}',
  PROTO = 0x80,
  TUPLE1 = 0x85,
  TUPLE2 = 0x86,
  TUPLE3 = 0x87,
  NEWTRUE = 0x88,
  NEWFALSE = 0x89,
  LONG1 = 0x8a,
  BINBYTES = 'B',        // protocol 3
  SHORT_BINBYTES = 'C',  // protocol 3
};

// The names a GLOBAL may bring in, under the name the rest of the reader uses.
const char* recognised_global(const std::string& module, const std::string& name) {
  if ((module == "numpy.core.multiarray" || module == "numpy._core.multiarray") &&
      name == "_reconstruct")
    return "numpy.core.multiarray._reconstruct";
  if (module == "numpy" && name == "ndarray") return "numpy.ndarray";
  if (module == "numpy" && name == "dtype") return "numpy.dtype";
  if (module == "_codecs" && name == "encode") return "_codecs.encode";
  return nullptr;
}

// Element types an array may have: the kind (signed, unsigned, float) and byte count.
bool known_dtype(const std::string& code) {
  static const char* const codes[] = {"u1", "u2", "u4", "u8", "i1", "i2",
                                      "i4", "i8", "f4", "f8", "b1"};
  for (const char* c : codes) {
    if (code == c) return true;
  }
  return false;
}

class Machine {
 public:
  Machine(const uint8_t* data, size_t size, const std::string& name,
          std::vector<std::unique_ptr<PickleValue>>& values)
      : data_(data), size_(size), name_(name), values_(values) {}

  const PickleValue* run() {
    while (true) {
      op_offset_ = pos_;
      if (pos_ >= size_) {
        throw Error(str_cat(name_, ": truncated: the pickle ends at offset ", size_,
                            " without its STOP opcode"));
      }
      const uint8_t op = data_[pos_++];
      op_ = op;
      if (op == STOP) {
        PickleValue* result = pop();
        return result;
      }
      step(op);
    }
  }

 private:
  [[noreturn]] void fail(const std::string& message) const {
    throw Error(str_cat(name_, ": offset ", op_offset_, ": ", opcode_name(op_), ": ", message));
  }

  static std::string opcode_name(uint8_t op) {
    char text[32];
    if (op >= 0x20 && op < 0x7f)
      std::snprintf(text, sizeof text, "opcode 0x%02x ('%c')", op, op);
    else
      std::snprintf(text, sizeof text, "opcode 0x%02x", op);
    return text;
  }

  // ---- reading the opcode's arguments, each checked against the bytes left ----
  const uint8_t* take(size_t n) {
    if (n > size_ - pos_) {
      throw Error(str_cat(name_, ": truncated at offset ", op_offset_, ": ", opcode_name(op_),
                          " needs ", n, " more bytes, ", size_ - pos_, " remain"));
    }
    const uint8_t* p = data_ + pos_;
    pos_ += n;
    return p;
  }
  uint32_t u8() { return *take(1); }
  uint32_t u16() {
    const uint8_t* p = take(2);
    return p[0] | p[1] << 8;
  }
  uint32_t u32() {
    const uint8_t* p = take(4);
    return p[0] | p[1] << 8 | p[2] << 16 | static_cast<uint32_t>(p[3]) << 24;
  }
  // A text line ending in '\n' (GLOBAL's names, PUT's and GET's numbers).
  std::string line() {
    for (size_t i = pos_; i < size_; ++i) {
      if (data_[i] == '\n') {
        std::string text(reinterpret_cast<const char*>(data_) + pos_, i - pos_);
        pos_ = i + 1;
        return text;
      }
    }
    throw Error(str_cat(name_, ": truncated at offset ", op_offset_, ": ", opcode_name(op_),
                        " needs a line ending in a newline, the pickle ends first"));
  }
  uint64_t decimal_line() {
    const std::string text = line();
    uint64_t value = 0;
    if (text.empty() || text.size() > 18) fail(str_cat("'", text, "' is not a memo index"));
    for (char c : text) {
      if (c < '0' || c > '9') fail(str_cat("'", text, "' is not a memo index"));
      value = value * 10 + (c - '0');
    }
    return value;
  }

  // ---- values and the stack ----
  PickleValue* make(Kind kind) {
    values_.push_back(std::make_unique<PickleValue>());
    values_.back()->kind = kind;
    return values_.back().get();
  }
  PickleValue* make_int(int64_t value) {
    PickleValue* v = make(Kind::Int);
    v->integer = value;
    return v;
  }
  PickleValue* make_string(Kind kind, size_t length) {
    PickleValue* v = make(kind);
    const uint8_t* p = take(length);
    v->bytes.assign(reinterpret_cast<const char*>(p), length);
    return v;
  }
  void push(PickleValue* value) { stack_.push_back(value); }
  PickleValue* pop() {
    if (stack_.size() <= floor()) fail("the stack is empty");
    PickleValue* top = stack_.back();
    stack_.pop_back();
    return top;
  }
  PickleValue* top() {
    if (stack_.size() <= floor()) fail("the stack is empty");
    return stack_.back();
  }
  // The stack below the last MARK belongs to the enclosing construct.
  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  // The values pushed since the last MARK, which is removed.
  std::vector<PickleValue*> pop_to_mark() {
    if (marks_.empty()) fail("no MARK before it");
    const size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<PickleValue*> items(stack_.begin() + mark, stack_.end());
    stack_.resize(mark);
    return items;
  }
  PickleValue* tuple(std::vector<PickleValue*> items) {
    PickleValue* t = make(Kind::Tuple);
    t->items.assign(items.begin(), items.end());
    return t;
  }
  PickleValue* expect(PickleValue* value, Kind kind, const char* what) {
    if (value->kind != kind) fail(str_cat("expected ", what, ", found ", value->describe()));
    return value;
  }
  void memo_put(uint64_t index) { memo_[index] = top(); }
  void memo_get(uint64_t index) {
    const auto it = memo_.find(index);
    if (it == memo_.end()) fail(str_cat("memo entry ", index, " was never stored"));
    push(it->second);
  }

  void step(uint8_t op) {
    switch (op) {
      case PROTO: {
        const uint32_t protocol = u8();
        if (protocol > 5) fail(str_cat("unknown pickle protocol ", protocol));
        return;
      }
      case MARK:
        marks_.push_back(stack_.size());
        return;
      case NONE:
        push(make(Kind::None));
        return;
      case NEWTRUE:
      case NEWFALSE: {
        PickleValue* v = make(Kind::Bool);
        v->integer = op == NEWTRUE;
        push(v);
        return;
      }
      case BININT:
        push(make_int(static_cast<int32_t>(u32())));
        return;
      case BININT1:
        push(make_int(u8()));
        return;
      case BININT2:
        push(make_int(u16()));
        return;
      case LONG1: {
        const uint32_t n = u8();
        if (n > 8) fail(str_cat("a ", n, "-byte integer does not fit in 64 bits"));
        const uint8_t* p = take(n);
        uint64_t value = 0;
        for (uint32_t i = 0; i < n; ++i) value |= static_cast<uint64_t>(p[i]) << (8 * i);
        if (n > 0 && n < 8 && (p[n - 1] & 0x80)) value |= ~uint64_t{0} << (8 * n);  // sign
        push(make_int(static_cast<int64_t>(value)));
        return;
      }
      case BINFLOAT: {
        const uint8_t* p = take(8);
        uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits = bits << 8 | p[i];  // big-endian
        PickleValue* v = make(Kind::Float);
        std::memcpy(&v->real, &bits, 8);
        push(v);
        return;
      }
      case SHORT_BINSTRING:
      case SHORT_BINBYTES:
        push(make_string(Kind::Bytes, u8()));
        return;
      case BINSTRING: {
        const int32_t length = static_cast<int32_t>(u32());
        if (length < 0) fail(str_cat("negative length ", length));
        push(make_string(Kind::Bytes, static_cast<size_t>(length)));
        return;
      }
      case BINBYTES:
        push(make_string(Kind::Bytes, u32()));
        return;
      case BINUNICODE:
        push(make_string(Kind::Text, u32()));
        return;
      case EMPTY_TUPLE:
        push(make(Kind::Tuple));
        return;
      case TUPLE1:
      case TUPLE2:
      case TUPLE3: {
        const size_t n = op - TUPLE1 + 1;
        std::vector<PickleValue*> items(n);
        for (size_t i = n; i-- > 0;) items[i] = pop();
        push(tuple(std::move(items)));
        return;
      }
      case TUPLE:
        push(tuple(pop_to_mark()));
        return;
      case EMPTY_LIST:
        push(make(Kind::List));
        return;
      case APPEND: {
        PickleValue* item = pop();
        expect(top(), Kind::List, "a list to append to")->items.push_back(item);
        return;
      }
      case APPENDS: {
        const std::vector<PickleValue*> items = pop_to_mark();
        PickleValue* list = expect(top(), Kind::List, "a list to append to");
        list->items.insert(list->items.end(), items.begin(), items.end());
        return;
      }
      case EMPTY_DICT:
        push(make(Kind::Dict));
        return;
      case SETITEM: {
        PickleValue* value = pop();
        PickleValue* key = pop();
        PickleValue* dict = expect(top(), Kind::Dict, "a dict to set an item of");
        dict->items.push_back(key);
        dict->items.push_back(value);
        return;
      }
      case SETITEMS: {
        const std::vector<PickleValue*> items = pop_to_mark();
        if (items.size() % 2 != 0)
          fail(str_cat(items.size(), " values do not make key-value pairs"));
        PickleValue* dict = expect(top(), Kind::Dict, "a dict to set items of");
        dict->items.insert(dict->items.end(), items.begin(), items.end());
        return;
      }
      case PUT:
        memo_put(decimal_line());
        return;
      case BINPUT:
        memo_put(u8());
        return;
      case LONG_BINPUT:
        memo_put(u32());
        return;
      case GET:
        memo_get(decimal_line());
        return;
      case BINGET:
        memo_get(u8());
        return;
      case LONG_BINGET:
        memo_get(u32());
        return;
      case GLOBAL: {
        const std::string module = line();
        const std::string name = line();
        const char* known = recognised_global(module, name);
        if (!known) {
          fail(str_cat("GLOBAL ", module, ".", name,
                       " is not allowed: only numpy.core.multiarray._reconstruct, numpy.ndarray, "
                       "numpy.dtype and _codecs.encode are recognised (a pickle is never run "
                       "as code here)"));
        }
        PickleValue* v = make(Kind::Global);
        v->bytes = known;
        push(v);
        return;
      }
      case REDUCE: {
        PickleValue* args = expect(pop(), Kind::Tuple, "an argument tuple");
        PickleValue* callable = expect(pop(), Kind::Global, "a recognised name to call");
        push(reduce(callable->bytes, args->items));
        return;
      }
      case BUILD: {
        PickleValue* state = pop();
        build(top(), state);
        return;
      }
      default:
        fail("is not supported: this reader knows only the opcodes of CIFAR-10's python batches");
    }
  }

  // ---- the recognised names, called ----
  PickleValue* reduce(const std::string& callable, const std::vector<const PickleValue*>& args) {
    if (callable == "numpy.core.multiarray._reconstruct") {
      // _reconstruct(ndarray, (0,), b'b'): an empty array that BUILD will fill.
      if (args.size() != 3 || args[0]->kind != Kind::Global || args[0]->bytes != "numpy.ndarray")
        fail("_reconstruct is called with (numpy.ndarray, shape, typecode) only");
      return make(Kind::Array);
    }
    if (callable == "numpy.dtype") {
      // dtype('u1', align, copy)
      if (args.empty() || !args[0]->is_string()) fail("numpy.dtype needs a type code");
      if (!known_dtype(args[0]->bytes))
        fail(str_cat("numpy dtype '", args[0]->bytes, "' is not supported (only plain numbers)"));
      PickleValue* dtype = make(Kind::DType);
      dtype->bytes = args[0]->bytes;
      return dtype;
    }
    if (callable == "_codecs.encode") {
      // _codecs.encode(text, 'latin1'): Python 3's way to write bytes at protocol 2; each
      // character of the text is one byte.
      if (args.size() != 2 || args[0]->kind != Kind::Text || !args[1]->is_string() ||
          (args[1]->bytes != "latin1" && args[1]->bytes != "latin-1"))
        fail("_codecs.encode is called with (text, 'latin1') only");
      PickleValue* v = make(Kind::Bytes);
      v->bytes = latin1_from_utf8(args[0]->bytes);
      return v;
    }
    fail(str_cat(callable, " cannot be called"));
  }

  std::string latin1_from_utf8(const std::string& text) {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
      const auto byte = static_cast<uint8_t>(text[i]);
      if (byte < 0x80) {
        out.push_back(static_cast<char>(byte));
      } else if ((byte & 0xe0) == 0xc0 && i + 1 < text.size() &&
                 (static_cast<uint8_t>(text[i + 1]) & 0xc0) == 0x80) {
        const uint32_t code = (byte & 0x1f) << 6 | (static_cast<uint8_t>(text[i + 1]) & 0x3f);
        if (code < 0x80 || code > 0xff) fail("text to encode as latin-1 has a character above 255");
        out.push_back(static_cast<char>(code));
        ++i;
      } else {
        fail("text to encode as latin-1 has a character above 255 or is not UTF-8");
      }
    }
    return out;
  }

  void build(PickleValue* target, const PickleValue* state) {
    if (target->built) fail(str_cat("the ", target->describe(), " is already built"));
    if (target->kind == Kind::DType) {
      // (version, byte order, subarray, names, fields, element size, alignment, flags[, meta])
      if (state->kind != Kind::Tuple || state->items.size() < 2 || !state->items[1]->is_string() ||
          state->items[1]->bytes.size() != 1)
        fail("a numpy dtype's state starts with (version, byte order)");
      const char order = state->items[1]->bytes[0];
      const bool one_byte = target->bytes.back() == '1';
      if (order == '>' && !one_byte) fail("big-endian numpy arrays are not supported");
      if (order != '|' && order != '<' && order != '=' && order != '>')
        fail(str_cat("unknown byte order '", order, "'"));
      target->byte_order = order;
      target->built = true;
      return;
    }
    if (target->kind != Kind::Array)
      fail(str_cat("BUILD on ", target->describe(), ": only numpy arrays and dtypes are built"));
    // (version, shape, dtype, fortran_order, data), or the same without the version
    if (state->kind != Kind::Tuple || (state->items.size() != 5 && state->items.size() != 4))
      fail(str_cat("a numpy array's state is (version, shape, dtype, fortran_order, data), found ",
                   state->describe()));
    const size_t first = state->items.size() - 4;
    const PickleValue* shape = state->items[first];
    const PickleValue* dtype = state->items[first + 1];
    const PickleValue* fortran = state->items[first + 2];
    const PickleValue* data = state->items[first + 3];
    if (shape->kind != Kind::Tuple) fail("a numpy array's shape is not a tuple");
    if (dtype->kind != Kind::DType || !dtype->built) fail("a numpy array without a built dtype");
    if (fortran->kind != Kind::Bool && fortran->kind != Kind::Int)
      fail("a numpy array's fortran_order is not a bool");
    if (data->kind != Kind::Bytes)
      fail(str_cat("a numpy array's data is a ", data->describe(), ", not bytes"));
    uint64_t count = 1;
    for (const PickleValue* dim : shape->items) {
      if (dim->kind != Kind::Int || dim->integer < 0) fail("a numpy array's shape is not sizes");
      if (dim->integer > 0 && count > UINT64_MAX / 8 / static_cast<uint64_t>(dim->integer))
        fail("a numpy array's shape is too large");
      count *= static_cast<uint64_t>(dim->integer);
      target->shape.push_back(dim->integer);
    }
    if (fortran->integer != 0 && target->shape.size() > 1)
      fail("numpy arrays in Fortran order are not supported");
    const uint64_t item_bytes = static_cast<uint64_t>(dtype->bytes.back() - '0');
    target->dtype = dtype->bytes;
    target->byte_order = dtype->byte_order;
    if (count * item_bytes != data->bytes.size()) {
      fail(str_cat("the ", target->describe(), " needs ", count * item_bytes,
                   " bytes of data, got ", data->bytes.size()));
    }
    // A copy: the memo may hand the same string to another place of the pickle.
    target->bytes = data->bytes;
    target->built = true;
  }

  const uint8_t* data_;
  size_t size_;
  const std::string& name_;
  std::vector<std::unique_ptr<PickleValue>>& values_;
  size_t pos_ = 0;
  size_t op_offset_ = 0;
  uint8_t op_ = 0;
  std::vector<PickleValue*> stack_;
  std::vector<size_t> marks_;  // stack heights at each MARK
  std::unordered_map<uint64_t, PickleValue*> memo_;
};

}  // namespace

Pickle Pickle::parse(const uint8_t* data, size_t size, const std::string& name) {
  Pickle pickle;
  Machine machine(data, size, name, pickle.values_);
  pickle.root_ = machine.run();
  return pickle;
}

}  // namespace ember::data
