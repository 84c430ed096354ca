#include "server/listen.h"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/socket_base.hpp>

#include "dtx/error.h"

namespace dtx::server {

ListenAddress listen_on(boost::asio::ip::tcp::acceptor& acceptor, const ListenAddress& address,
                        std::string_view what, std::string_view hint) {
  using boost::asio::ip::tcp;
  try {
    const std::string host = address.host == "localhost" ? "127.0.0.1" : address.host;
    tcp::endpoint endpoint(boost::asio::ip::make_address(host), static_cast<unsigned short>(address.port));
    acceptor.open(endpoint.protocol());
    acceptor.set_option(tcp::acceptor::reuse_address(true));
    acceptor.bind(endpoint);
    acceptor.listen(boost::asio::socket_base::max_listen_connections);
  } catch (const boost::system::system_error& e) {
    throw Error({.code = Errc::config, .hint = std::string(hint)},
                "cannot listen on " + address.to_string() + " for " + std::string(what) + ": " + e.code().message());
  }
  ListenAddress bound = address;
  bound.port = acceptor.local_endpoint().port();
  return bound;
}

}  // namespace dtx::server
