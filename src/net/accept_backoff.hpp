// What both listeners (the Unix socket and the HTTP port) do when accept fails for want of
// descriptors or memory: pause accepting for a moment instead of spinning on the error.
#pragma once

#include <boost/system/error_code.hpp>

#include <chrono>

namespace photon::net {

// How long a listener stops accepting after a resource-exhaustion error.
inline constexpr auto kAcceptBackoff = std::chrono::milliseconds(100);

// EMFILE, ENFILE, ENOBUFS, ENOMEM: the error says the process or system is out of something that
// a moment's wait (a connection closing) may give back, not that the listener is broken.
inline bool is_resource_exhaustion(const boost::system::error_code& ec) {
  return ec == boost::system::errc::too_many_files_open ||
         ec == boost::system::errc::too_many_files_open_in_system ||
         ec == boost::system::errc::no_buffer_space || ec == boost::system::errc::not_enough_memory;
}

}  // namespace photon::net
