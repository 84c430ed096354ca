#include "decision-log/log_reader.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "decision-log/crc32c.h"
#include "decision-log/log_format.h"
#include "dtx/error.h"

namespace dtx::log {

namespace {

std::uint32_t load_le32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return std::uint32_t{u[0]} | std::uint32_t{u[1]} << 8 | std::uint32_t{u[2]} << 16 |
         std::uint32_t{u[3]} << 24;
}

bool all_zero(std::string_view bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](char c) { return c == '\0'; });
}

}  // namespace

LogReader LogReader::from_file(const std::filesystem::path& path) {
  const auto fail = [&](const char* action) {
    const int err = errno;
    throw Error(
        {.code = Errc::log, .hint = "check the permissions and the disk of the log directory"},
        std::string("cannot ") + action + " decision log segment " + path.string() + ": " +
            std::strerror(err));
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("open");
  std::string contents;
  char buffer[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      errno = err;
      fail("read");
    }
    contents.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return LogReader(std::move(contents));
}

bool LogReader::stop(std::string problem) {
  problem_ = std::move(problem);
  return false;
}

std::uint64_t LogReader::zero_tail_start() {
  if (!zero_tail_start_) {
    const auto last = std::find_if(contents_.rbegin(), contents_.rend(),
                                   [](char c) { return c != '\0'; });
    zero_tail_start_ = static_cast<std::uint64_t>(contents_.rend() - last);
  }
  return *zero_tail_start_;
}

bool LogReader::read(std::string* payload) {
  if (!problem_.empty()) return false;
  static constexpr const char* kTypeNames[] = {"ZERO", "FULL", "FIRST", "MIDDLE", "LAST"};
  const std::string_view data = contents_;
  // Every byte from here on is zero: the end of the written part of a
  // preallocated segment (or of the file). Crash tears show as zeros too: a
  // fragment that fails its checks and has only zeros from inside it to the
  // end of the file was cut by a crash, like one cut by the end of the file.
  const std::uint64_t zeros_from = zero_tail_start();
  const auto zero_tail = [&] { return " (zero-filled from offset " + std::to_string(zeros_from) + ")"; };
  std::string record;
  bool in_record = false;  // a FIRST fragment was read, its LAST not yet
  std::uint64_t record_start = pos_;
  const auto offset = [this] { return std::to_string(pos_); };  // for messages only
  for (;;) {
    const std::size_t block_left = kBlockSize - pos_ % kBlockSize;
    const std::size_t file_left = data.size() - pos_;
    if (pos_ >= zeros_from) {
      if (!in_record) return false;  // clean: the end, or a zero-filled tail
      return stop("torn tail: the record at offset " + std::to_string(record_start) +
                  " has no LAST fragment before " +
                  (file_left == 0 ? std::string("the end of the file")
                                  : "the zero-filled tail at offset " + offset()));
    }
    // From here on some byte at or after pos_ is not zero.
    if (block_left < kHeaderSize) {
      // A block tail too short for a header. The writer zero-fills it ahead of
      // the next record, so non-zero data follows it.
      const std::string_view trailer = data.substr(pos_, std::min(block_left, file_left));
      if (!all_zero(trailer)) {
        return stop("non-zero bytes in the block trailer at offset " + offset());
      }
      pos_ += trailer.size();
      continue;
    }
    if (file_left < kHeaderSize) {
      return stop("torn tail: partial fragment header at offset " + offset());
    }

    const char* header = data.data() + pos_;
    const std::uint32_t stored_crc = crc32c::unmask(load_le32(header));
    const std::size_t length = static_cast<unsigned char>(header[4]) |
                               static_cast<std::size_t>(static_cast<unsigned char>(header[5])) << 8;
    const std::uint8_t type_byte = static_cast<unsigned char>(header[6]);

    if (type_byte == static_cast<std::uint8_t>(FragmentType::zero)) {
      // A header whose last bytes (the type at least) are zero, with nothing
      // but zeros after it, was cut while being written.
      return stop(zeros_from <= pos_ + kHeaderSize
                      ? "torn tail: partial fragment header at offset " + offset() + zero_tail()
                      : "fragment of type ZERO at offset " + offset());
    }
    if (type_byte > kMaxFragmentType) {
      return stop("bad fragment type " + std::to_string(type_byte) + " at offset " + offset());
    }
    if (kHeaderSize + length > block_left) {
      return stop("fragment at offset " + offset() + " has length " + std::to_string(length) +
                  ", past the end of its block");
    }
    if (kHeaderSize + length > file_left) {
      return stop("torn tail: the fragment at offset " + offset() + " needs " +
                  std::to_string(kHeaderSize + length) + " bytes, the file has " +
                  std::to_string(file_left));
    }
    const std::string_view fragment = data.substr(pos_ + kHeaderSize, length);
    if (crc32c::extend(crc32c::value(data.substr(pos_ + 6, 1)), fragment) != stored_crc) {
      return stop(zeros_from < pos_ + kHeaderSize + length
                      ? "torn tail: the fragment at offset " + offset() + " of " +
                            std::to_string(kHeaderSize + length) + " bytes is cut off" +
                            zero_tail()
                      : "checksum mismatch in the fragment at offset " + offset());
    }

    const auto type = static_cast<FragmentType>(type_byte);
    const auto what = [&] {
      return std::string(kTypeNames[type_byte]) + " fragment at offset " + offset();
    };
    const bool starts = type == FragmentType::full || type == FragmentType::first;
    const bool ends = type == FragmentType::full || type == FragmentType::last;
    if (starts && in_record) {
      return stop(what() + " inside the record started at offset " + std::to_string(record_start));
    }
    if (!starts && !in_record) return stop(what() + " without a FIRST fragment before it");
    // The writer continues a record in the next block only after filling this one.
    if (!ends && kHeaderSize + length != block_left) {
      return stop(what() + " continues in the next block but does not fill its own");
    }
    if (starts) {
      record_start = pos_;
      in_record = true;
    }
    record.append(fragment);
    pos_ += kHeaderSize + length;
    if (ends) {
      record_offset_ = record_start;
      valid_bytes_ = pos_;
      *payload = std::move(record);
      return true;
    }
  }
}

}  // namespace dtx::log
