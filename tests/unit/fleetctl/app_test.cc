// fleetctl's command line, run in-process: parsing, exit codes, commands that
// need no engine, and the one-line error for an engine that cannot be reached.

#include "fleetctl/app.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "gtest/gtest.h"

namespace fleet::ctl {
namespace {

struct Result {
  int code;
  std::string out;
  std::string err;
};

Result RunCtl(std::vector<std::string> args) {
  args.insert(args.begin(), "fleetctl");
  std::ostringstream out, err;
  int code = RunFleetctl(args, out, err, /*out_is_terminal=*/false);
  return {code, out.str(), err.str()};
}

std::string WriteFile(const std::string& name, const std::string& contents) {
  auto path = std::filesystem::path(::testing::TempDir()) / "app_test" / name;
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << contents;
  return path.string();
}

TEST(FleetctlTest, Version) {
  Result r = RunCtl({"version"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out.rfind("fleetctl version ", 0), 0u) << r.out;
}

TEST(FleetctlTest, NoCommandIsAUsageError) {
  Result r = RunCtl({});
  EXPECT_EQ(r.code, 2);
}

TEST(FleetctlTest, UnknownCommandIsAUsageError) {
  Result r = RunCtl({"launch-rockets"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("launch-rockets"), std::string::npos) << r.err;
}

TEST(FleetctlTest, UnknownGlobalFlagIsNamed) {
  Result r = RunCtl({"--no-such-flag", "list-units"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "Error: unknown flag --no-such-flag; see fleetctl --help\n");
}

TEST(FleetctlTest, HelpListsTheVerbs) {
  Result r = RunCtl({"--help"});
  EXPECT_EQ(r.code, 0);
  for (const char* verb : {"submit", "load", "start", "stop", "restart", "unload", "destroy",
                           "cat", "list-units", "list-unit-files", "list-machines", "status",
                           "journal", "ssh", "verify", "version", "help"}) {
    EXPECT_NE(r.out.find(verb), std::string::npos) << verb;
  }
}

TEST(FleetctlTest, HelpVerbPrintsTheSameAsTheHelpFlag) {
  Result flag = RunCtl({"--help"});
  Result verb = RunCtl({"help"});
  EXPECT_EQ(verb.code, 0);
  EXPECT_EQ(verb.out, flag.out);
}

TEST(FleetctlTest, HelpOfOneCommandIsThatCommandsHelp) {
  Result flag = RunCtl({"journal", "--help"});
  Result verb = RunCtl({"help", "journal"});
  EXPECT_EQ(verb.code, 0) << verb.err;
  EXPECT_NE(verb.out.find("--lines"), std::string::npos) << verb.out;
  EXPECT_EQ(verb.out, flag.out);
}

TEST(FleetctlTest, HelpOfAnUnknownCommandIsAUsageError) {
  Result r = RunCtl({"help", "launch-rockets"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "Error: unknown command \"launch-rockets\"; see fleetctl help\n");
}

TEST(FleetctlTest, VerifyAcceptsAGoodUnit) {
  std::string path = WriteFile("good.service",
                               "[Service]\nExecStart=/bin/true\n[X-Fleet]\nGlobal=true\n");
  Result r = RunCtl({"verify", path});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
}

TEST(FleetctlTest, VerifyPrintsEveryErrorWithFileAndLine) {
  std::string path = WriteFile("bad.service",
                               "[Service]\n"
                               "ExecStart=/bin/true\n"
                               "[X-Fleet]\n"
                               "MachineMetadata=region\n"
                               "Bogus=1\n");
  Result r = RunCtl({"verify", path});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find(path + ":4: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(path + ":5: "), std::string::npos) << r.err;
}

TEST(FleetctlTest, UnreachableEngineIsOneClearLine) {
  // Port 1 on loopback: nothing listens there.
  Result r = RunCtl({"--endpoint", "127.0.0.1:1", "--insecure", "--request-timeout", "2s", "list-machines"});
  EXPECT_EQ(r.code, 1);
  // --insecure's one warning line, then the error in one line.
  EXPECT_EQ(r.err.rfind("Warning: --insecure: talking to the engine at 127.0.0.1:1 in PLAINTEXT", 0), 0u)
      << r.err;
  EXPECT_NE(r.err.find("\nError: cannot reach the engine at 127.0.0.1:1"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 2) << r.err;
}

TEST(FleetctlTest, NeitherCertificatesNorInsecureIsAUsageErrorSayingWhatToGive) {
  Result r = RunCtl({"--endpoint", "127.0.0.1:1", "list-machines"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find("give --ca-file, --cert-file and --key-file"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("scripts/pki"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--insecure"), std::string::npos) << r.err;
  // Half the files is the same usage error.
  r = RunCtl({"--endpoint", "127.0.0.1:1", "--ca-file", "/x/ca.pem", "list-units"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("give --ca-file, --cert-file and --key-file"), std::string::npos) << r.err;
}

TEST(FleetctlTest, InsecureAndCertificatesExcludeEachOther) {
  Result r = RunCtl({"--insecure", "--ca-file", "/x/ca.pem", "--cert-file", "/x/a.pem", "--key-file",
                     "/x/a-key.pem", "list-units"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("exclude each other"), std::string::npos) << r.err;
}

TEST(FleetctlTest, UnreadableCertificateFileIsAUsageErrorNamingIt) {
  Result r = RunCtl({"--ca-file", "/nonexistent/ca.pem", "--cert-file", "/nonexistent/a.pem", "--key-file",
                     "/nonexistent/a-key.pem", "list-units"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("/nonexistent/ca.pem"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(FleetctlTest, BadRequestTimeoutIsAUsageError) {
  Result r = RunCtl({"--request-timeout", "soon", "list-units"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--request-timeout"), std::string::npos);
}

}  // namespace
}  // namespace fleet::ctl
