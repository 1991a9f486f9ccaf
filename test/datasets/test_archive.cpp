// Files as bytes: reading and atomic writing, gzip (against streams Python's gzip module wrote),
// and tar archives (against archives Python's tarfile module wrote, and hand-laid ustar bytes),
// with the errors a damaged file gives.
#include <doctest/doctest.h>

#include "datasets/archive.h"
#include "format_fixtures.h"
#include "temporary_files.h"

using namespace ember;
using namespace ember::data;
using ember::test::bytes_of;
using ember::test::contains;
using ember::test::error_of;
using ember::test::from_hex;
using ember::test::TemporaryDirectory;
using ember::test::write_bytes;

namespace {

// /usr/bin/python3 -c "import gzip; print(gzip.compress(b'ember reads gzip\n' * 4,
//                                                       mtime=0).hex())"
const char* const kPythonGzip =
    "1f8b08000000000002034bcd4d4a2d52284a4d4c295648afca2ce04a255d0000ca19cf7c44000000";

// Python's tarfile, gzipped: a folder 'data', 'data/short.txt' ("hello\n") and
// 'data/' + 'long-' * 25 + 'name.bin' (bytes 0..255 three times), every mtime 0:
//   t = tarfile.open(fileobj=buf, mode='w', format=FORMAT); t.addfile(...) for each;
//   gzip.compress(buf.getvalue(), mtime=0).hex()
// with FORMAT tarfile.GNU_FORMAT (the long name in an 'L' entry) ...
const char* const kPythonGnuTarGz =
    "1f8b08000000000002034b492c49d467a02d300002331313300d04e83416b69999a131838229031d40697149"
    "62918202c3080529a0f82fcec82f2ad12ba92819a8f837438d7f4303534323060583d1f8a739c848cdc9c9e7"
    "6218052314e8e9ebe93bf8e4e7a5fb64e665d3b0fcc792efe179de0858d8a396ffe6e6a6860c0a3ea3f99f3e"
    "e57f0e30fe75078ac84bcc4dd54bcacc1bcd8bc335fe09d4ff8626e8ed3f630363b3d1fa9f3e809189998595"
    "8d9d83938b9b87978f5f4050485844544c5c42524a5a46564e5e4151495945554d5d43534b5b47574fdfc0d0"
    "c8d8c4d4ccdcc2d2cadac6d6cedec1d1c9d9c5d5cdddc3d3cbdbc7d7cf3f2030283824342c3c22322a3a2636"
    "2e3e2131293925352d3d23332b3b27372fbfa0b0a8b8a4b4acbca2b2aabaa6b6aebea1b1a9b9a5b5adbda3b3"
    "abbba7b7af7fc2c44993a74c9d367dc6cc59b3e7cc9d377fc1c2458b972c5db67cc5ca55abd7ac5db77ec3c6"
    "4d9bb76cddb67dc7ce5dbbf7ecddb7ffc0c143878f1c3d76fcc4c953a7cf9c3d77fec2c54b97af5cbd76fdc6"
    "cd5bb7efdcbd77ffc1c3478f9f3c7df6fcc5cb57afdfbc7df7fec3c74f9fbf7cfdf6fdc7cf5fbffffcfdf77f"
    "d4ff23dcffa360148c8251300a46c1281805a360148c8251300a46c1281805a360148c8251300a46c1281805"
    "c30c0000c25a3bfb00280000";
// ... and tarfile.PAX_FORMAT (the long name in a pax 'x' header's path record).
const char* const kPythonPaxTarGz =
    "1f8b08000000000002034b492c49d467a02d300002331313300d04e83416b69999a931838229031d40697149"
    "6211d04a8691095240f15f9c915f54a25752513250f16f861aff8606a6a6460c0a06a3f14f7390919a9393cf"
    "c5300a4628d0d3d7d3770848acf0484d4c492da25dfec792efe179dec8c8043dff1b1902cbff8ad1fc4f7360"
    "6862a150905892610bae0872f2f3d275078ac84bcc4dd54bcacc1b2d8de85dffd3386209d4ff8626e8ed3f63"
    "0313a3d1fa9f3e8091899985958d9d83938b9b87978f5f4050485844544c5c42524a5a46564e5e4151495945"
    "554d5d43534b5b47574fdfc0d0c8d8c4d4ccdcc2d2cadac6d6cedec1d1c9d9c5d5cdddc3d3cbdbc7d7cf3f20"
    "30283824342c3c22322a3a26362e3e2131293925352d3d23332b3b27372fbfa0b0a8b8a4b4acbca2b2aabaa6"
    "b6aebea1b1a9b9a5b5adbda3b3abbba7b7af7fc2c44993a74c9d367dc6cc59b3e7cc9d377fc1c2458b972c5d"
    "b67cc5ca55abd7ac5db77ec3c64d9bb76cddb67dc7ce5dbbf7ecddb7ffc0c143878f1c3d76fcc4c953a7cf9c"
    "3d77fec2c54b97af5cbd76fdc6cd5bb7efdcbd77ffc1c3478f9f3c7df6fcc5cb57afdfbc7df7fec3c74f9fbf"
    "7cfdf6fdc7cf5fbffffcfdf77fd4ff23dcffa360148c8251300a46c1281805a360148c8251300a46c1281805"
    "a360148c8251300a46c1281805c30c00005bb6686500280000";

const std::string kLongName = "data/" + [] {
  std::string s;
  for (int i = 0; i < 25; ++i) s += "long-";
  return s + "name.bin";
}();

std::vector<uint8_t> counting_bytes() {
  std::vector<uint8_t> bytes;
  for (int round = 0; round < 3; ++round)
    for (int i = 0; i < 256; ++i) bytes.push_back(static_cast<uint8_t>(i));
  return bytes;
}

}  // namespace

TEST_CASE("a file reads back byte for byte and a missing one is named") {
  TemporaryDirectory dir;
  std::vector<uint8_t> bytes(3 << 20);  // more than one read block
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 7 + (i >> 12));
  write_bytes(dir.file("blob"), bytes);
  CHECK(read_file_bytes(dir.file("blob")) == bytes);
  write_bytes(dir.file("empty"), {});
  CHECK(read_file_bytes(dir.file("empty")).empty());
  CHECK(error_of([&] { read_file_bytes(dir.file("nothing")); }) ==
        dir.file("nothing") + ": no such file");
  CHECK(contains(error_of([&] { read_file_bytes(dir.path.string()); }), "is a folder"));
}

TEST_CASE("an atomic write leaves only the finished file behind") {
  TemporaryDirectory dir;
  write_file_atomically(dir.file("out.bin"), bytes_of("first"));
  write_file_atomically(dir.file("out.bin"), bytes_of("second version"));
  CHECK(ember::test::read_file(dir.file("out.bin")) == "second version");
  CHECK(dir.entries() == std::vector<std::string>{"out.bin"});
  CHECK(contains(error_of([&] { write_file_atomically(dir.file("no/such/folder/x"), "x", 1); }),
                 "no/such/folder/x: cannot create"));
}

TEST_CASE("gunzip reads what Python's gzip wrote and what gzip writes") {
  const std::vector<uint8_t> python = from_hex(kPythonGzip);
  CHECK(is_gzip(python));
  std::string expected;
  for (int i = 0; i < 4; ++i) expected += "ember reads gzip\n";
  CHECK(gunzip(python, "python.gz") == bytes_of(expected));

  std::vector<uint8_t> big(200000);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>((i * i) >> 5);
  const std::vector<uint8_t> packed = gzip(big);
  CHECK(packed.size() < big.size());
  CHECK(gunzip(packed, "big.gz") == big);
  CHECK(gunzip(gzip(std::vector<uint8_t>{}), "empty.gz").empty());
}

TEST_CASE("gunzip joins concatenated members and ignores zero padding") {
  std::vector<uint8_t> both = gzip(bytes_of("first part, "));
  const std::vector<uint8_t> second = gzip(bytes_of("second part"));
  both.insert(both.end(), second.begin(), second.end());
  CHECK(gunzip(both, "both.gz") == bytes_of("first part, second part"));
  both.resize(both.size() + 100, 0);
  CHECK(gunzip(both, "padded.gz") == bytes_of("first part, second part"));
}

TEST_CASE("a truncated or corrupt gzip stream is an error naming the file") {
  const std::vector<uint8_t> packed = gzip(bytes_of(std::string(5000, 'e') + "mber"));
  for (size_t keep : {size_t{2}, size_t{10}, packed.size() / 2, packed.size() - 1}) {
    const std::vector<uint8_t> cut(packed.begin(), packed.begin() + keep);
    INFO("kept " << keep << " of " << packed.size() << " bytes");
    CHECK(contains(error_of([&] { gunzip(cut, "cut.gz"); }), "cut.gz: truncated gzip data"));
  }
  std::vector<uint8_t> corrupt = packed;
  corrupt[packed.size() - 6] ^= 0xff;  // inside the CRC-32 of the trailer
  CHECK(contains(error_of([&] { gunzip(corrupt, "crc.gz"); }), "crc.gz: corrupt gzip data"));
  corrupt = packed;
  corrupt[10] = 0xff;  // the first deflate block header: an invalid block type
  CHECK(contains(error_of([&] { gunzip(corrupt, "block.gz"); }), "block.gz: corrupt gzip data"));
  std::vector<uint8_t> trailing = packed;
  trailing.push_back('x');
  CHECK(contains(error_of([&] { gunzip(trailing, "tail.gz"); }),
                 "tail.gz: unexpected bytes after the gzip data"));
  CHECK(contains(error_of([] { gunzip(bytes_of("plain text"), "plain.txt"); }),
                 "plain.txt: not gzip data"));

  TemporaryDirectory dir;
  const std::vector<uint8_t> cut(packed.begin(), packed.end() - 3);
  write_bytes(dir.file("cut.gz"), cut);
  CHECK(contains(error_of([&] { read_file_maybe_gzipped(dir.file("cut.gz")); }),
                 dir.file("cut.gz") + ": truncated gzip data"));
  write_bytes(dir.file("raw.txt"), bytes_of("not compressed"));
  CHECK(read_file_maybe_gzipped(dir.file("raw.txt")) == bytes_of("not compressed"));
}

TEST_CASE("tar archives that Python's tarfile wrote list and read their files") {
  for (const char* hex : {kPythonGnuTarGz, kPythonPaxTarGz}) {
    const TarArchive tar = TarArchive::from_bytes(gunzip(from_hex(hex), "python.tar.gz"), "t");
    REQUIRE(tar.members().size() == 2);  // the folder 'data' is not a member
    CHECK(tar.members()[0].name == "data/short.txt");
    CHECK(tar.members()[1].name == kLongName);
    CHECK(tar.read("data/short.txt") == bytes_of("hello\n"));
    CHECK(tar.read(kLongName) == counting_bytes());
    CHECK(tar.find("data") == nullptr);
    CHECK(tar.find("./data/short.txt") != nullptr);
  }
}

TEST_CASE("a tar opens from a file whether gzipped or not") {
  TemporaryDirectory dir;
  const std::vector<uint8_t> tar =
      ember::test::tar_bytes({{"top", "", '5'},
                              {"top/a.bin", "alpha"},
                              {"./top/b.bin", std::string(1000, 'b')},
                              {"top/" + std::string(150, 'n'), "long"}});
  write_bytes(dir.file("plain.tar"), tar);
  write_bytes(dir.file("packed.whatever"), gzip(tar));  // recognised by content, not name
  for (const char* name : {"plain.tar", "packed.whatever"}) {
    const TarArchive archive = TarArchive::open(dir.file(name));
    CHECK(archive.name() == dir.file(name));
    REQUIRE(archive.members().size() == 3);
    CHECK(archive.read("top/a.bin") == bytes_of("alpha"));
    CHECK(archive.read("top/b.bin") == bytes_of(std::string(1000, 'b')));
    CHECK(archive.read("top/" + std::string(150, 'n')) == bytes_of("long"));
    CHECK(archive.members()[1].size == 1000);
    CHECK(error_of([&] { archive.read("top/c.bin"); }) ==
          dir.file(name) + ": no member named 'top/c.bin'");
  }
}

TEST_CASE("a ustar name in two parts joins its prefix and name") {
  std::vector<uint8_t> tar = ember::test::tar_header("file.txt", 3, '0', "some/deep/folder");
  ember::test::append_tar_content(tar, "abc");
  tar.resize(tar.size() + 1024, 0);
  const TarArchive archive = TarArchive::from_bytes(tar, "prefix.tar");
  REQUIRE(archive.members().size() == 1);
  CHECK(archive.members()[0].name == "some/deep/folder/file.txt");
  CHECK(archive.read("some/deep/folder/file.txt") == bytes_of("abc"));
}

TEST_CASE("a truncated tar or a bad header checksum names the archive and the member") {
  const std::vector<uint8_t> tar =
      ember::test::tar_bytes({{"a.bin", std::string(700, 'a')}, {"b.bin", std::string(3000, 'b')}});
  // a.bin: header 0, content 512..1211 (padded to 1536); b.bin: header 1536, content 2048..5047
  std::vector<uint8_t> cut(tar.begin(), tar.begin() + 2048 + 1000);
  CHECK(error_of([&] { TarArchive::from_bytes(cut, "cut.tar"); }) ==
        "cut.tar: member 'b.bin' (tar header at offset 1536): truncated: expected 3000 bytes of "
        "content, got 1000");
  cut.assign(tar.begin(), tar.begin() + 1536 + 100);
  CHECK(error_of([&] { TarArchive::from_bytes(cut, "cut.tar"); }) ==
        "cut.tar: truncated: the tar header at offset 1536 needs 512 bytes, only 100 remain");
  // An archive that simply ends after a member, without the zero blocks, is whole.
  cut.assign(tar.begin(), tar.begin() + 2048 + 3072);
  CHECK(TarArchive::from_bytes(cut, "short.tar").members().size() == 2);

  std::vector<uint8_t> damaged = tar;
  damaged[1536 + 2] = 'x';  // b.bin -> b.xin, checksum unchanged
  CHECK(contains(error_of([&] { TarArchive::from_bytes(damaged, "bad.tar"); }),
                 "bad.tar: member 'b.xin' (tar header at offset 1536): bad header checksum"));
  std::vector<uint8_t> noise(2048, 'z');
  CHECK(error_of([&] { TarArchive::from_bytes(noise, "noise.tar"); }) ==
        "noise.tar: not a tar archive (it does not start with a tar header)");
  std::vector<uint8_t> first_damaged = tar;
  first_damaged[0] = 'x';
  CHECK(contains(error_of([&] { TarArchive::from_bytes(first_damaged, "first.tar"); }),
                 "first.tar: not a tar archive"));
  CHECK(TarArchive::from_bytes({}, "empty.tar").members().empty());
}
