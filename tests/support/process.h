// Child processes for tests that crash things on purpose: run the dtx tool
// with a failpoint, wait for it, kill it.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/test_env.h"

namespace dtx::test {

struct ExitStatus {
  int code = -1;    // exit code, or -1 if killed
  int signal = 0;   // the signal that ended it, or 0
  bool killed_by(int sig) const { return code == -1 && signal == sig; }
};

inline ExitStatus decode_status(int raw) {
  ExitStatus s;
  if (WIFEXITED(raw)) s.code = WEXITSTATUS(raw);
  if (WIFSIGNALED(raw)) s.signal = WTERMSIG(raw);
  return s;
}

// A child process running a program with extra environment variables; its
// stdout and stderr go to files under `dir`.
class Child {
 public:
  Child(const std::filesystem::path& program, const std::vector<std::string>& args,
        const std::map<std::string, std::string>& env, const std::filesystem::path& dir,
        const std::string& tag)
      : out_(dir / (tag + ".out")), err_(dir / (tag + ".err")) {
    std::fflush(nullptr);  // or the child's freopen would write our buffered output again
    pid_ = ::fork();
    if (pid_ == 0) {
      for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
      std::freopen(out_.c_str(), "w", stdout);
      std::freopen(err_.c_str(), "w", stderr);
      std::freopen("/dev/null", "r", stdin);
      std::vector<char*> argv;
      std::string prog = program.string();
      argv.push_back(prog.data());
      std::vector<std::string> copy = args;
      for (auto& a : copy) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(prog.c_str(), argv.data());
      std::_Exit(127);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (pid_ > 0 && !status_) {
      ::kill(pid_, SIGKILL);
      wait();
    }
  }

  pid_t pid() const { return pid_; }
  void kill(int sig = SIGKILL) { ::kill(pid_, sig); }
  ExitStatus wait() {
    if (!status_) {
      int raw = 0;
      ::waitpid(pid_, &raw, 0);
      status_ = decode_status(raw);
    }
    return *status_;
  }
  // True once the process has ended (reaped here); never blocks.
  bool exited() {
    if (status_) return true;
    int raw = 0;
    if (::waitpid(pid_, &raw, WNOHANG) != pid_) return false;
    status_ = decode_status(raw);
    return true;
  }
  std::string out() const { return slurp(out_); }
  std::string err() const { return slurp(err_); }

  static std::string slurp(const std::filesystem::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

 private:
  pid_t pid_ = -1;
  std::optional<ExitStatus> status_;
  std::filesystem::path out_, err_;
};

// The dtx tool built beside the tests.
inline std::filesystem::path dtx_binary() { return binary_dir() / "dtx"; }

// Polls `condition` every few milliseconds until it holds or `limit` passes.
// Returns whether it held: a bounded wait for a condition, not a sleep.
inline bool eventually(const std::function<bool()>& condition,
                       std::chrono::milliseconds limit = std::chrono::seconds(30)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace dtx::test
