// Which certificate names stand for the engine the agent dialled: the check
// the agent makes on the engine's certificate (Mbed TLS leaves it to us).

#include <string>
#include <vector>

#include "agent/transport/client_tls.h"
#include "gtest/gtest.h"

namespace fleet::agent {
namespace {

bool Names(const std::vector<SubjectAltName>& names, const std::string& host) {
  return SubjectAltNamesName(names, host);
}

constexpr char kLoopback4[] = {127, 0, 0, 1};
const std::string_view kLoopbackV4(kLoopback4, 4);
const std::string kLoopbackV6 = std::string(15, '\0') + '\1';

TEST(SubjectAltNamesTest, AnAddressIsNamedByAnEqualIpAddressEntryOnly) {
  EXPECT_TRUE(Names({{kSanIpAddress, kLoopbackV4}}, "127.0.0.1"));
  EXPECT_FALSE(Names({{kSanIpAddress, kLoopbackV4}}, "127.0.0.2"));
  EXPECT_TRUE(Names({{kSanIpAddress, kLoopbackV6}}, "::1"));
  EXPECT_FALSE(Names({{kSanIpAddress, kLoopbackV4}}, "::1"));  // other family, other length
  // The address written as a name, or as a URI, is not an address entry.
  EXPECT_FALSE(Names({{kSanDnsName, "127.0.0.1"}}, "127.0.0.1"));
  EXPECT_FALSE(Names({{kSanUri, "127.0.0.1"}}, "127.0.0.1"));
}

TEST(SubjectAltNamesTest, ANameIsNamedByADnsNameEntryOnly) {
  EXPECT_TRUE(Names({{kSanDnsName, "engine-1.example.com"}}, "engine-1.example.com"));
  EXPECT_TRUE(Names({{kSanDnsName, "Engine-1.EXAMPLE.com"}}, "engine-1.example.com"));
  EXPECT_FALSE(Names({{kSanDnsName, "engine-2.example.com"}}, "engine-1.example.com"));
  // Mbed TLS 2.28 compares these with the name too; they are not names.
  EXPECT_FALSE(Names({{kSanUri, "localhost"}}, "localhost"));
  EXPECT_FALSE(Names({{kSanIpAddress, "abcd"}}, "abcd"));
}

TEST(SubjectAltNamesTest, AWildcardStandsForExactlyOneLabelBelowADomain) {
  const std::vector<SubjectAltName> wildcard = {{kSanDnsName, "*.engines.example.com"}};
  EXPECT_TRUE(Names(wildcard, "e1.engines.example.com"));
  EXPECT_FALSE(Names(wildcard, "a.e1.engines.example.com"));
  EXPECT_FALSE(Names(wildcard, "engines.example.com"));
  EXPECT_FALSE(Names(wildcard, ".engines.example.com"));
  EXPECT_FALSE(Names({{kSanDnsName, "*.com"}}, "example.com"));
  EXPECT_FALSE(Names({{kSanDnsName, "*."}}, "a."));
}

TEST(SubjectAltNamesTest, AnyEntryMayNameTheHost) {
  const std::vector<SubjectAltName> engine = {
      {kSanUri, "fleet://engine/engine-1"}, {kSanIpAddress, kLoopbackV4}, {kSanDnsName, "localhost"}};
  EXPECT_TRUE(Names(engine, "127.0.0.1"));
  EXPECT_TRUE(Names(engine, "localhost"));
  EXPECT_FALSE(Names(engine, "engine-1"));
  EXPECT_FALSE(Names({}, "localhost"));
}

}  // namespace
}  // namespace fleet::agent
