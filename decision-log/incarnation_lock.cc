#include "decision-log/incarnation_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "dtx/error.h"

namespace dtx {

namespace fs = std::filesystem;

fs::path incarnation_lock_file(const fs::path& log_dir, std::string_view coordinator_id,
                               std::string_view incarnation) {
  return log_dir / (std::string(coordinator_id) + "-" + std::string(incarnation) + ".lock");
}

IncarnationLock& IncarnationLock::operator=(IncarnationLock&& other) noexcept {
  if (this != &other) {
    release();
    fd_ = std::exchange(other.fd_, -1);
    remove_on_release_ = std::move(other.remove_on_release_);
  }
  return *this;
}

void IncarnationLock::release() noexcept {
  if (fd_ < 0) return;
  std::error_code ec;
  if (!remove_on_release_.empty()) fs::remove(remove_on_release_, ec);  // still locked: nobody raced us
  ::close(fd_);
  fd_ = -1;
}

IncarnationLock adopt_incarnation(const fs::path& log_dir, const std::string& coordinator_id,
                                  const std::string& incarnation) {
  const fs::path file = incarnation_lock_file(log_dir, coordinator_id, incarnation);
  bool created = false;
  int fd = ::open(file.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    created = fd >= 0;
    if (fd < 0 && errno == EEXIST) fd = ::open(file.c_str(), O_RDWR | O_CLOEXEC);
  }
  if (fd < 0)
    throw Error({.code = Errc::log}, "cannot open lock file " + file.string() + ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return {};
  }
  // The file may have been removed by its releaser between our open and our
  // lock; a lock on an unlinked file protects nothing, so count it as held
  // by someone else and let the next pass look again.
  struct stat by_fd {}, by_name {};
  if (::fstat(fd, &by_fd) != 0 || ::stat(file.c_str(), &by_name) != 0 || by_fd.st_ino != by_name.st_ino) {
    ::close(fd);
    return {};
  }
  return IncarnationLock(fd, created ? file : fs::path());
}

}  // namespace dtx
