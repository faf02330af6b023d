// radguard's side of the services plugin (src/services/stub.cpp) with the plugin missing, as
// the radguard executable links it: the functions that return a Result fail with
// ErrorCode::unsupported naming the plugin, and the others answer as if nothing matched or
// succeeded, without throwing (services.hpp). Built as its own program: the other test
// programs link the services directly.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "net/dimse.hpp"
#include "net/query.hpp"
#include "services/services.hpp"

namespace radguard {
namespace {

TEST(ServicesPlugin, WithoutThePluginEveryFunctionFailsClosedWithoutThrowing) {
  // Named explicitly, the plugin is looked for nowhere else; set before its first use.
  ASSERT_EQ(::setenv("RADGUARD_SERVICES", "/nonexistent/radguard-services.so", 1), 0);
  ASSERT_TRUE(services::is_plugin_build());
  const Status loaded = services::load();
  ASSERT_FALSE(loaded);
  EXPECT_NE(loaded.error().message.find("(radguard-services.so) is not available"),
            std::string::npos)
      << loaded.error().message;

  // Without a Result: nothing succeeded, no host matches (even a rule for every address), no
  // query class is offered, no level is named.
  EXPECT_NO_THROW(net::disable_nagle());
  bool stored = true, matched = true;
  EXPECT_NO_THROW(stored = net::store_succeeded(net::kStatusSuccess));
  EXPECT_FALSE(stored);
  net::HostRule everyone;
  everyone.prefix = 0;
  EXPECT_NO_THROW(matched = net::host_matches(everyone, "127.0.0.1"));
  EXPECT_FALSE(matched);
  EXPECT_NO_THROW(EXPECT_TRUE(net::query_sop_classes().empty()));
  EXPECT_NO_THROW(EXPECT_STREQ(net::level_name(net::QueryLevel::study), "unknown"));

  // With a Result: unsupported, naming the plugin.
  net::ServerConfig config;
  config.port = 11112;
  config.ae_title = "RG";
  const auto server = net::StoreServer::create(
      config,
      [](const net::StoreRequest&, const net::ReceiveInto&) { return net::kStatusSuccess; });
  ASSERT_FALSE(server);
  EXPECT_EQ(server.error().code, ErrorCode::unsupported);
  const auto rule = net::parse_host_rule("127.0.0.1");
  ASSERT_FALSE(rule);
  EXPECT_EQ(rule.error().code, ErrorCode::unsupported);
  const auto echoed = net::echo(net::Peer{"PACS", "127.0.0.1", 104, std::nullopt, {}}, "RG", 1);
  ASSERT_FALSE(echoed);
  EXPECT_EQ(echoed.error().code, ErrorCode::unsupported);
  const auto session =
      net::StoreSession::create(net::Peer{"PACS", "127.0.0.1", 104, std::nullopt, {}}, "RG", 1);
  ASSERT_FALSE(session);
  EXPECT_EQ(session.error().code, ErrorCode::unsupported);
}

}  // namespace
}  // namespace radguard
