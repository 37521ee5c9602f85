// A directory checked once and then used only through its descriptor: $PHOTON_DIR/daemons, where
// the daemon keeps its socket, pid file, log, token file and job database, and where clients find
// the socket. The rules are ssh's, tmux's and gpg-agent's (docs/security.md).
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace photon {

// A directory or socket that is not safe to use; the message names the path, what was found and
// what is required.
class UntrustedPathError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Who may own a directory the daemon writes in: the daemon itself only.
// Who may own a directory or socket a client goes through: itself or root.
enum class TrustedOwners { kSelf, kSelfOrRoot };

// Why a directory with status `info` must not be used by a process of effective uid `euid`, or
// nothing when it may: it must be a directory owned by `euid` (or by root, with kSelfOrRoot) that
// neither group nor others can write. `path` only names it in the sentence.
std::optional<std::string> directory_distrust(const std::filesystem::path& path,
                                              const struct stat& info, uid_t euid,
                                              TrustedOwners owners);

// Why a socket file with status `info` must not be connected to by `euid` (not a socket, or owned
// by a uid other than `euid` and root), or nothing when it may.
std::optional<std::string> socket_distrust(const std::filesystem::path& path,
                                           const struct stat& info, uid_t euid);

// Why a listening process of uid `peer_uid` must not be talked to by `euid`, or nothing.
std::optional<std::string> listener_distrust(const std::filesystem::path& path, uid_t peer_uid,
                                             uid_t euid);

// Invariants: fd_ is an open O_DIRECTORY descriptor of a directory that passed the owner and mode
// check when it was opened; every entry is reached through fd_ (openat, renameat, unlinkat) or
// through /proc/self/fd/FD/NAME, so the directory's path is never resolved again and a symlink
// planted in it is never followed. Entries are names, never paths ("svc.sock").
// Thread rule: any thread; the methods only read members.
class PrivateDir {
 public:
  // For the daemon: opens `path` (creating it 0700, and its missing parent 0700) without following
  // a symlink at its last component, and checks that it is owned by the effective uid and that
  // group and others cannot write it; read or search bits for them are removed (chmod 0700).
  // Throws UntrustedPathError when the check fails, std::system_error when it cannot be opened.
  static PrivateDir open_owned(const std::filesystem::path& path);

  // For a client: opens an existing `path` without following a symlink at its last component and
  // checks it as open_owned does, root being trusted too (an O_PATH descriptor: entries can be
  // looked up and opened, the directory itself is not read). Returns nothing when it does not
  // exist.
  // Throws UntrustedPathError when the check fails, std::system_error when it cannot be opened.
  static std::optional<PrivateDir> open_trusted(const std::filesystem::path& path);

  PrivateDir(PrivateDir&& other) noexcept;
  PrivateDir& operator=(PrivateDir&& other) noexcept;
  PrivateDir(const PrivateDir&) = delete;
  PrivateDir& operator=(const PrivateDir&) = delete;
  ~PrivateDir();

  int fd() const { return fd_; }
  const std::filesystem::path& path() const { return path_; }
  // `name` under path(), for messages only.
  std::filesystem::path shown(std::string_view name) const { return path_ / name; }

  // A path to `name` for the calls that take no directory descriptor (bind, connect, SQLite):
  // /proc/self/fd/FD/NAME, which the kernel resolves through the open descriptor, so it reaches
  // this directory whatever happens to its path. Only where /proc is not mounted, path()/name.
  std::string entry_path(std::string_view name) const;

  // Opens the regular file `name` with `flags` (O_NOFOLLOW and O_CLOEXEC are added; with O_CREAT
  // it is created with `mode`). Throws UntrustedPathError when it is a symlink or not a regular
  // file, std::system_error naming the file when it cannot be opened. Returns the descriptor, which
  // the caller closes.
  int open_file(std::string_view name, int flags, mode_t mode = 0600) const;

  // Replaces `name` with `text`, never half-written: writes NAME.tmp (created exclusively, 0600;
  // a leftover one is removed first), syncs it when `durable`, and renames it over `name`; when
  // `durable`, the directory is synced too. Returns an error sentence on failure, in which case
  // `name` is unchanged and no NAME.tmp is left.
  std::optional<std::string> replace_file(std::string_view name, std::string_view text,
                                          bool durable) const;

  // The status of `name` itself (a symlink is not followed), or nothing when it does not exist.
  // Throws std::system_error for other failures.
  std::optional<struct stat> status(std::string_view name) const;

  // Removes the entry `name` (a file, socket or symlink; never a directory). A missing one is not
  // an error. Returns false when it could not be removed.
  bool remove(std::string_view name) const;

 private:
  PrivateDir(std::filesystem::path path, int fd);

  std::filesystem::path path_;
  int fd_ = -1;
  bool proc_reaches_fd_ = false;
};

}  // namespace photon
