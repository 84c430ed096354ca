// Opening a listening socket for dtx serve's ports, one way for all of them.
#pragma once

#include <string_view>

#include <boost/asio/ip/tcp.hpp>

#include "dtx/config.h"

namespace dtx::server {

// Opens, binds and listens `acceptor` on `address` (localhost = 127.0.0.1)
// and returns the address bound (port 0 picks one). Throws
// dtx::Error(Errc::config) "cannot listen on <address> for <what>: <why>"
// with `hint` when it cannot.
ListenAddress listen_on(boost::asio::ip::tcp::acceptor& acceptor, const ListenAddress& address,
                        std::string_view what, std::string_view hint);

}  // namespace dtx::server
