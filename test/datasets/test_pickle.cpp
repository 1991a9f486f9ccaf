// The restricted pickle reader: CIFAR-10's python batches as Python 2's cPickle wrote them, the
// same written by Python 3 (bytes through _codecs.encode), and the refusals: names that are not
// numpy's, unknown opcodes, truncated and damaged pickles.
#include <doctest/doctest.h>

#include <cstring>  // memcpy

#include "datasets/pickle.h"
#include "format_fixtures.h"
#include "temporary_files.h"

using namespace ember;
using namespace ember::data;
using ember::test::bytes_of;
using ember::test::contains;
using ember::test::error_of;
using ember::test::from_hex;
using Kind = PickleValue::Kind;

namespace {

// Python 2.7's cPickle.dumps(d, 2) of
//   d = {'batch_label': 'training batch 1 of 5', 'labels': [6, 9, 300, 70000],
//        'data': A, 'filenames': ['a.png', 'b.png']}
// where A is a 2×3 uint8 array holding 0, 1, 2, 253, 254, 255. No numpy was at hand for Python
// 2, so A was a stand-in registered as numpy.ndarray whose __reduce__ returns what numpy 1.x's
// array_reduce returns: (numpy.core.multiarray._reconstruct, (ndarray, (0,), 'b'),
// (1, (2, 3), dtype, False, '\x00\x01\x02\xfd\xfe\xff')), with dtype's __reduce__ giving
// (numpy.dtype, ('u1', 0, 1), (3, '|', None, None, None, -1, -1, 0)) as arraydescr_reduce does.
const char* const kPython2CifarLike =
    "80027d7101285504646174617102636e756d70792e636f72652e6d756c746961727261790a5f7265636f6e73"
    "74727563740a7103636e756d70790a6e6461727261790a71044b0085710555016287527106284b014b024b03"
    "867107636e756d70790a64747970650a71085502753171094b004b0187710a52710b284b0355017c4e4e4e4a"
    "ffffffff4affffffff4b0074710c62895506000102fdfeff710d746255066c6162656c73710e5d710f284b06"
    "4b094d2c014a7011010065550b62617463685f6c6162656c71105515747261696e696e672062617463682031"
    "206f6620357111550966696c656e616d657371125d7113285505612e706e6771145505622e706e6771156575"
    "2e";

// Python 3's pickle.dumps(d, protocol=2) with numpy 1.24 of
//   d = {b'data': numpy.array([[0, 1, 2], [253, 254, 255]], dtype=numpy.uint8),
//        b'labels': [6, 9], b'wide': numpy.array([1, -2, 2**40], dtype='<i8'), b'half': 0.5,
//        b'name': 'caf\u00e9', b'none': None, b'flag': True, b'neg': -3, b'big': 2**40}
// Python 3 writes bytes at protocol 2 as _codecs.encode(text, 'latin1').
const char* const kPython3Mixed =
    "80027d710028635f636f646563730a656e636f64650a7101580400000064617461710258060000006c617469"
    "6e317103867104527105636e756d70792e636f72652e6d756c746961727261790a5f7265636f6e7374727563"
    "740a7106636e756d70790a6e6461727261790a71074b0085710868015801000000627109680386710a52710b"
    "87710c52710d284b014b024b0386710e636e756d70790a64747970650a710f58020000007531711089888771"
    "11527112284b0358010000007c71134e4e4e4affffffff4affffffff4b007471146289680158090000000001"
    "02c3bdc3bec3bf7115680386711652711774711862680158060000006c6162656c737119680386711a52711b"
    "5d711c284b064b09656801580400000077696465711d680386711e52711f680668074b00857120680b877121"
    "527122284b014b03857123680f5802000000693871248988877125527126284b0358010000003c71274e4e4e"
    "4affffffff4affffffff4b007471286289680158200000000100000000000000c3bec3bfc3bfc3bfc3bfc3bf"
    "c3bfc3bf00000000000100007129680386712a52712b74712c626801580400000068616c66712d680386712e"
    "52712f473fe0000000000000680158040000006e616d65713068038671315271325805000000636166c3a971"
    "33680158040000006e6f6e65713468038671355271364e68015804000000666c616771376803867138527139"
    "88680158030000006e6567713a680386713b52713c4afdffffff68015803000000626967713d680386713e52"
    "713f8a06000000000001752e";

// The bytes of a string literal, NULs included.
template <size_t N>
std::vector<uint8_t> raw(const char (&text)[N]) {
  return std::vector<uint8_t>(text, text + N - 1);
}

std::string array_bytes(const PickleValue& value) {
  REQUIRE(value.kind == Kind::Array);
  return value.bytes;
}

}  // namespace

TEST_CASE("a batch pickled by Python 2 reads as dict list string and numpy array") {
  const Pickle pickle = Pickle::parse(from_hex(kPython2CifarLike), "python2.pickle");
  const PickleValue& root = pickle.root();
  REQUIRE(root.kind == Kind::Dict);
  CHECK(root.keys() == std::vector<std::string>{"data", "labels", "batch_label", "filenames"});
  const PickleValue* data = root.get("data");
  REQUIRE(data != nullptr);
  CHECK(data->kind == Kind::Array);
  CHECK(data->dtype == "u1");
  CHECK(data->shape == std::vector<int64_t>{2, 3});
  CHECK(array_bytes(*data) == std::string("\x00\x01\x02\xfd\xfe\xff", 6));
  CHECK(data->describe() == "numpy array u1 (2, 3)");

  const PickleValue* labels = root.get("labels");
  REQUIRE(labels->kind == Kind::List);
  std::vector<int64_t> values;
  for (const PickleValue* item : labels->items) values.push_back(item->integer);
  CHECK(values == std::vector<int64_t>{6, 9, 300, 70000});
  CHECK(root.get("batch_label")->kind == Kind::Bytes);
  CHECK(root.get("batch_label")->bytes == "training batch 1 of 5");
  REQUIRE(root.get("filenames")->items.size() == 2);
  CHECK(root.get("filenames")->items[1]->bytes == "b.png");
  CHECK(root.get("missing") == nullptr);
}

TEST_CASE("the CIFAR batch builder of the tests writes what cPickle wrote") {
  // The builder test_cifar10.cpp uses: the same content gives the same bytes, opcode for opcode.
  const std::vector<uint8_t> built =
      ember::test::cifar_py_batch_pickle("training batch 1 of 5", {6, 9, 300, 70000},
                                         {0, 1, 2, 253, 254, 255}, 2, 3, {"a.png", "b.png"});
  CHECK(built == from_hex(kPython2CifarLike));
}

TEST_CASE("a large batch with long strings and runs of appends reads back exactly") {
  // 2500 labels (runs of 1000, 1000 and 500), 1001 file names (one lone APPEND, memo slots
  // past 255: LONG_BINPUT), and data past 255 bytes (BINSTRING).
  std::vector<int64_t> labels(2500);
  std::vector<std::string> names(1001);
  std::vector<uint8_t> data(2500 * 4);
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<int64_t>(i * 37 % 70001);
  for (size_t i = 0; i < names.size(); ++i) names[i] = "image_" + std::to_string(i) + ".png";
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 13);
  const Pickle pickle = Pickle::parse(
      ember::test::cifar_py_batch_pickle("batch", labels, data, 2500, 4, names), "large");
  const PickleValue& root = pickle.root();
  CHECK(root.get("data")->shape == std::vector<int64_t>{2500, 4});
  CHECK(array_bytes(*root.get("data")) == std::string(data.begin(), data.end()));
  REQUIRE(root.get("labels")->items.size() == 2500);
  for (size_t i = 0; i < labels.size(); ++i)
    CHECK(root.get("labels")->items[i]->integer == labels[i]);
  REQUIRE(root.get("filenames")->items.size() == 1001);
  CHECK(root.get("filenames")->items[1000]->bytes == "image_1000.png");
}

TEST_CASE("a pickle written by Python 3 decodes bytes ints floats and int64 arrays") {
  const Pickle pickle = Pickle::parse(from_hex(kPython3Mixed), "python3.pickle");
  const PickleValue& root = pickle.root();
  REQUIRE(root.kind == Kind::Dict);
  CHECK(root.keys() == std::vector<std::string>{"data", "labels", "wide", "half", "name", "none",
                                                "flag", "neg", "big"});
  CHECK(root.get("data")->dtype == "u1");
  CHECK(array_bytes(*root.get("data")) == std::string("\x00\x01\x02\xfd\xfe\xff", 6));
  const PickleValue* wide = root.get("wide");
  CHECK(wide->dtype == "i8");
  CHECK(wide->byte_order == '<');
  CHECK(wide->shape == std::vector<int64_t>{3});
  const std::string raw = array_bytes(*wide);
  REQUIRE(raw.size() == 24);
  int64_t values[3];
  std::memcpy(values, raw.data(), 24);
  CHECK(values[0] == 1);
  CHECK(values[1] == -2);
  CHECK(values[2] == (int64_t{1} << 40));
  CHECK(root.get("labels")->items.size() == 2);
  CHECK(root.get("half")->real == 0.5);
  CHECK(root.get("name")->kind == Kind::Text);
  CHECK(root.get("name")->bytes == "caf\xc3\xa9");
  CHECK(root.get("none")->kind == Kind::None);
  CHECK(root.get("flag")->kind == Kind::Bool);
  CHECK(root.get("flag")->integer == 1);
  CHECK(root.get("neg")->integer == -3);
  CHECK(root.get("big")->integer == (int64_t{1} << 40));
}

TEST_CASE("memo entries are shared and tuples and PUT and GET by text work") {
  // [x, x] where x = (1, 'ab') stored with PUT 7 and fetched with GET 7, then a dict by SETITEM.
  const Pickle pickle = Pickle::parse(raw("\x80\x02]q\x00(K\x01U\x02"
                                          "ab\x86p7\ng7\ne}q\x01U\x01kNsa)a."),
                                      "memo");
  const PickleValue& list = pickle.root();
  REQUIRE(list.kind == Kind::List);
  REQUIRE(list.items.size() == 4);
  CHECK(list.items[0] == list.items[1]);  // one value, twice
  CHECK(list.items[0]->items[1]->bytes == "ab");
  CHECK(list.items[2]->get("k")->kind == Kind::None);
  CHECK(list.items[3]->kind == Kind::Tuple);
  CHECK(list.items[3]->items.empty());
}

TEST_CASE("a pickle naming os.system is refused and nothing runs") {
  // What pickle.dumps of an object whose __reduce__ returns (os.system, ('ls',)) gives.
  const auto evil =
      raw("\x80\x02"
          "cos\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85q\x02Rq\x03.");
  CHECK(error_of([&] { Pickle::parse(evil, "evil.pickle"); }) ==
        "evil.pickle: offset 2: opcode 0x63 ('c'): GLOBAL os.system is not allowed: only "
        "numpy.core.multiarray._reconstruct, numpy.ndarray, numpy.dtype and _codecs.encode are "
        "recognised (a pickle is never run as code here)");
  const std::string builtins =
      "\x80\x02"
      "c__builtin__\neval\n.";
  CHECK(contains(error_of([&] { Pickle::parse(bytes_of(builtins), "b.pickle"); }),
                 "GLOBAL __builtin__.eval is not allowed"));
}

TEST_CASE("unknown opcodes and misuse of the stack are errors with the offset") {
  // Protocol 4's FRAME, and INST (which would call a class by name).
  CHECK(error_of([] { Pickle::parse(raw("\x80\x04\x95\x00"), "p4"); }) ==
        "p4: offset 2: opcode 0x95: is not supported: this reader knows only the opcodes of "
        "CIFAR-10's python batches");
  CHECK(contains(error_of([] { Pickle::parse(bytes_of("(ios\nsystem\n."), "inst"); }),
                 "inst: offset 1: opcode 0x69 ('i'): is not supported"));
  CHECK(error_of([] { Pickle::parse(bytes_of("\x80\x02."), "empty"); }) ==
        "empty: offset 2: opcode 0x2e ('.'): the stack is empty");
  CHECK(contains(error_of([] {
                   Pickle::parse(bytes_of("K\x01"
                                          "e."),
                                 "appends");
                 }),
                 "appends: offset 2: opcode 0x65 ('e'): no MARK before it"));
  CHECK(contains(error_of([] {
                   Pickle::parse(bytes_of("K\x01K\x02"
                                          "a."),
                                 "append");
                 }),
                 "expected a list to append to, found int"));
  CHECK(contains(error_of([] { Pickle::parse(bytes_of("h\x05."), "get"); }),
                 "get: offset 0: opcode 0x68 ('h'): memo entry 5 was never stored"));
  CHECK(contains(error_of([] { Pickle::parse(bytes_of("}(K\x01u."), "odd"); }),
                 "1 values do not make key-value pairs"));
  CHECK(contains(error_of([] { Pickle::parse(bytes_of("K\x01(b."), "build"); }),
                 "the stack is empty"));
  CHECK(contains(error_of([] {
                   Pickle::parse(bytes_of("K\x01N"
                                          "b."),
                                 "build");
                 }),
                 "BUILD on int: only numpy arrays and dtypes are built"));
}

TEST_CASE("a numpy array whose data does not match its shape is refused") {
  // The Python 2 batch with shape (2, 3) changed to (2, 4): 8 bytes expected, 6 present.
  std::vector<uint8_t> bytes = from_hex(kPython2CifarLike);
  REQUIRE(bytes[86] == 'K');
  REQUIRE(bytes[87] == 3);
  bytes[87] = 4;
  CHECK(contains(error_of([&] { Pickle::parse(bytes, "shape.pickle"); }),
                 "shape.pickle: offset 159: opcode 0x62 ('b'): the numpy array u1 (2, 4) needs "
                 "8 bytes of data, got 6"));
  // dtype 'u1' changed to 'O1' (no such plain number type)
  bytes = from_hex(kPython2CifarLike);
  REQUIRE(bytes[108] == 'u');
  bytes[108] = 'O';
  CHECK(contains(error_of([&] { Pickle::parse(bytes, "dtype.pickle"); }),
                 "numpy dtype 'O1' is not supported"));
}

TEST_CASE("every truncation of a pickle is an error and never a value") {
  const std::vector<uint8_t> whole = from_hex(kPython2CifarLike);
  for (size_t keep = 0; keep < whole.size(); ++keep) {
    const std::vector<uint8_t> cut(whole.begin(), whole.begin() + keep);
    const std::string message = error_of([&] { Pickle::parse(cut, "cut.pickle"); });
    INFO("kept " << keep << " bytes: " << message);
    CHECK(contains(message, "cut.pickle: truncated"));
  }
  // Inside the 6 bytes of the array's data string at offset 148:
  const std::vector<uint8_t> cut(whole.begin(), whole.begin() + 153);
  CHECK(error_of([&] { Pickle::parse(cut, "cut.pickle"); }) ==
        "cut.pickle: truncated at offset 148: opcode 0x55 ('U') needs 6 more bytes, 3 remain");
  CHECK(error_of([&] { Pickle::parse(whole.data(), 160, "cut.pickle"); }) ==
        "cut.pickle: truncated: the pickle ends at offset 160 without its STOP opcode");
}

TEST_CASE("any single damaged byte gives a value or an error but never a crash") {
  const std::vector<uint8_t> whole = from_hex(kPython2CifarLike);
  size_t errors = 0;
  for (size_t at = 0; at < whole.size(); ++at) {
    for (int value :
         {0x00, 0x01, 0x7f, 0x80, 0xff, int('N'), int('('), int('t'), int('b'), int('R')}) {
      std::vector<uint8_t> damaged = whole;
      damaged[at] = static_cast<uint8_t>(value);
      try {
        Pickle::parse(damaged, "damaged");
      } catch (const Error&) {
        ++errors;
      }
    }
  }
  CHECK(errors > whole.size());  // most damage is noticed
}
