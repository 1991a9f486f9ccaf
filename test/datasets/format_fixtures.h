// Byte-level builders of the file formats the data-set tests read: tar archives written the way
// the POSIX ustar format (and GNU tar's long names) lay them out, and CIFAR-10 python batches
// written with the exact opcode sequence of Python 2's cPickle (test_pickle.cpp checks the
// builder against bytes cPickle itself produced).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace ember::test {

inline void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

inline std::vector<uint8_t> bytes_of(const std::string& text) {
  return std::vector<uint8_t>(text.begin(), text.end());
}

// "1f8b08" -> {0x1f, 0x8b, 0x08}: files Python wrote, pasted into tests as hex.
inline std::vector<uint8_t> from_hex(const std::string& hex) {
  std::vector<uint8_t> bytes;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    bytes.push_back(static_cast<uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return bytes;
}

// ---- tar ----------------------------------------------------------------------------------

struct TarEntry {
  std::string name;
  std::string content;
  char type = '0';  // '0' a file, '5' a folder
};

// One 512-byte ustar header: name at 0, mode 100, uid 108, gid 116, size 124 (11 octal digits),
// mtime 136, checksum 148 (the byte sum with the field taken as spaces, six octal digits, NUL,
// space), type 156, magic "ustar\0" + version "00" at 257, prefix at 345.
inline std::vector<uint8_t> tar_header(const std::string& name, size_t size, char type,
                                       const std::string& prefix = "") {
  std::vector<uint8_t> header(512, 0);
  auto put = [&](size_t offset, const std::string& text) {
    std::memcpy(header.data() + offset, text.data(), text.size());
  };
  char number[16];
  put(0, name.substr(0, 100));
  put(100, "0000644");
  put(108, "0000000");
  put(116, "0000000");
  std::snprintf(number, sizeof number, "%011zo", size);
  put(124, number);
  put(136, "00000000000");
  header[156] = static_cast<uint8_t>(type);
  put(257, std::string("ustar\0", 6));
  put(263, "00");
  put(345, prefix);
  put(148, "        ");
  unsigned sum = 0;
  for (uint8_t byte : header) sum += byte;
  std::snprintf(number, sizeof number, "%06o", sum);
  put(148, number);
  header[154] = 0;
  header[155] = ' ';
  return header;
}

inline void append_tar_content(std::vector<uint8_t>& tar, const std::string& content) {
  tar.insert(tar.end(), content.begin(), content.end());
  tar.resize((tar.size() + 511) / 512 * 512, 0);
}

// A tar of `entries`; names longer than 100 bytes get a GNU 'L' entry before their header.
inline std::vector<uint8_t> tar_bytes(const std::vector<TarEntry>& entries) {
  std::vector<uint8_t> tar;
  for (const TarEntry& entry : entries) {
    if (entry.name.size() > 100) {
      const std::string long_name = entry.name + std::string(1, '\0');
      const auto header = tar_header("././@LongLink", long_name.size(), 'L');
      tar.insert(tar.end(), header.begin(), header.end());
      append_tar_content(tar, long_name);
    }
    const auto header = tar_header(entry.name, entry.content.size(), entry.type);
    tar.insert(tar.end(), header.begin(), header.end());
    append_tar_content(tar, entry.content);
  }
  tar.resize(tar.size() + 1024, 0);  // the end: two zero blocks
  return tar;
}

// ---- a CIFAR-10 python batch, as Python 2's cPickle (protocol 2) writes it ---------------
//
// {'data': numpy array uint8 (n, 3072), 'labels': [n ints], 'batch_label': str,
//  'filenames': [n str]}, keys in the order Python 2's dict holds them, memo slots counted from
// 1, lists appended in runs of 1000 (a lone last item with APPEND), as cPickle does.
class Py2PickleWriter {
 public:
  std::vector<uint8_t> out;
  uint32_t next_memo = 1;

  void op(uint8_t code) { out.push_back(code); }
  void u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  void put() {
    if (next_memo < 256) {
      op('q');
      op(static_cast<uint8_t>(next_memo));
    } else {
      op('r');
      u32(next_memo);
    }
    ++next_memo;
  }
  void integer(int64_t v) {
    if (v >= 0 && v < 256) {
      op('K');
      op(static_cast<uint8_t>(v));
    } else if (v >= 0 && v < 65536) {
      op('M');
      op(static_cast<uint8_t>(v));
      op(static_cast<uint8_t>(v >> 8));
    } else {
      op('J');
      u32(static_cast<uint32_t>(static_cast<int32_t>(v)));
    }
  }
  void string(const std::string& s) {  // a Python 2 str
    if (s.size() < 256) {
      op('U');
      op(static_cast<uint8_t>(s.size()));
    } else {
      op('T');
      u32(static_cast<uint32_t>(s.size()));
    }
    out.insert(out.end(), s.begin(), s.end());
  }
  // A list's items: MARK ... APPENDS for each run of up to 1000, APPEND for a lone last one.
  template <typename EmitItem>
  void list_items(size_t count, EmitItem emit_item) {
    for (size_t start = 0; start < count; start += 1000) {
      const size_t end = std::min(count, start + 1000);
      if (end - start == 1) {
        emit_item(start);
        op('a');
        continue;
      }
      op('(');
      for (size_t i = start; i < end; ++i) emit_item(i);
      op('e');
    }
  }
  void global(const std::string& module, const std::string& name) {
    op('c');
    for (char c : module + "\n" + name + "\n") out.push_back(static_cast<uint8_t>(c));
  }
};

inline std::vector<uint8_t> cifar_py_batch_pickle(const std::string& batch_label,
                                                  const std::vector<int64_t>& labels,
                                                  const std::vector<uint8_t>& data, int64_t rows,
                                                  int64_t columns,
                                                  const std::vector<std::string>& filenames) {
  Py2PickleWriter w;
  w.op(0x80);  // PROTO 2
  w.op(2);
  w.op('}');  // EMPTY_DICT
  w.put();
  w.op('(');  // MARK: the dict's items follow
  // 'data': _reconstruct(ndarray, (0,), 'b') then BUILD (1, shape, dtype, False, bytes)
  w.string("data");
  w.put();
  w.global("numpy.core.multiarray", "_reconstruct");
  w.put();
  w.global("numpy", "ndarray");
  w.put();
  w.integer(0);
  w.op(0x85);  // TUPLE1
  w.put();
  w.string("b");
  w.op(0x87);  // TUPLE3
  w.op('R');   // REDUCE
  w.put();
  w.op('(');
  w.integer(1);
  w.integer(rows);
  w.integer(columns);
  w.op(0x86);  // TUPLE2: the shape
  w.put();
  w.global("numpy", "dtype");  // dtype('u1', 0, 1) then BUILD (3, '|', None, None, None, -1, -1, 0)
  w.put();
  w.string("u1");
  w.put();
  w.integer(0);
  w.integer(1);
  w.op(0x87);
  w.put();
  w.op('R');
  w.put();
  w.op('(');
  w.integer(3);
  w.string("|");
  w.op('N');
  w.op('N');
  w.op('N');
  w.integer(-1);
  w.integer(-1);
  w.integer(0);
  w.op('t');  // TUPLE
  w.put();
  w.op('b');   // BUILD the dtype
  w.op(0x89);  // NEWFALSE: not Fortran order
  w.string(std::string(data.begin(), data.end()));
  w.put();
  w.op('t');
  w.op('b');  // BUILD the array
  // 'labels': EMPTY_LIST, then MARK ... APPENDS per 1000 items (a lone last item: APPEND)
  w.string("labels");
  w.put();
  w.op(']');
  w.put();
  w.list_items(labels.size(), [&](size_t i) { w.integer(labels[i]); });
  w.string("batch_label");
  w.put();
  w.string(batch_label);
  w.put();
  w.string("filenames");
  w.put();
  w.op(']');
  w.put();
  w.list_items(filenames.size(), [&](size_t i) {
    w.string(filenames[i]);
    w.put();
  });
  w.op('u');  // SETITEMS
  w.op('.');  // STOP
  return w.out;
}

}  // namespace ember::test
