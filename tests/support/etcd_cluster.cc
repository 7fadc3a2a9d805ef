#include "tests/support/etcd_cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "grpcpp/grpcpp.h"

extern char** environ;

namespace fleet::test {
namespace {

constexpr char kEtcd[] = "/usr/bin/etcd";

// A port nobody listens on now, with its socket kept open so that the next
// call does not return it again.
absl::StatusOr<int> FreePort(std::vector<int>& open_sockets) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    return absl::InternalError("bind 127.0.0.1:0 failed");
  }
  open_sockets.push_back(fd);
  return ntohs(addr.sin_port);
}

}  // namespace

absl::StatusOr<std::unique_ptr<EtcdCluster>> EtcdCluster::Start(int members,
                                                                absl::Duration timeout,
                                                                std::optional<tls::TlsFiles> tls) {
  if (members < 1) return absl::InvalidArgumentError("an etcd cluster needs at least 1 member");
  if (access(kEtcd, X_OK) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(kEtcd, " not found: install Debian's etcd-server (scripts/setup)"));
  }
  std::string pattern = (std::filesystem::temp_directory_path() / "fleet-etcd-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) return absl::InternalError("mkdtemp " + pattern);
  std::unique_ptr<EtcdCluster> cluster(new EtcdCluster(pattern, std::move(tls)));
  static std::atomic<int> counter{0};
  cluster->token_ = absl::StrCat("fleet-test-", getpid(), "-", counter++);

  std::vector<int> sockets;
  absl::Status ports_ok;
  for (int i = 0; i < members && ports_ok.ok(); ++i) {
    Member m;
    m.name = absl::StrCat("m", i);
    absl::StatusOr<int> client = FreePort(sockets);
    absl::StatusOr<int> peer = FreePort(sockets);
    if (!client.ok() || !peer.ok()) {
      ports_ok = client.ok() ? peer.status() : client.status();
      break;
    }
    m.client_port = *client;
    m.peer_port = *peer;
    cluster->members_.push_back(m);
  }
  for (int fd : sockets) close(fd);
  if (!ports_ok.ok()) return ports_ok;

  // All members first: none is healthy before a quorum runs.
  for (int i = 0; i < members; ++i) {
    if (absl::Status s = cluster->Spawn(i, /*new_cluster=*/true); !s.ok()) return s;
  }
  absl::Time deadline = absl::Now() + timeout;
  for (int i = 0; i < members; ++i) {
    if (absl::Status s = cluster->WaitHealthy(i, deadline - absl::Now()); !s.ok()) return s;
  }
  return cluster;
}

EtcdCluster::~EtcdCluster() {
  for (int i = 0; i < size(); ++i) Kill(i);
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::string EtcdCluster::endpoint(int i) const {
  return absl::StrCat("127.0.0.1:", members_[i].client_port);
}

std::vector<std::string> EtcdCluster::endpoints() const {
  std::vector<std::string> out;
  for (int i = 0; i < size(); ++i) out.push_back(endpoint(i));
  return out;
}

std::string EtcdCluster::Url(int port) const {
  return absl::StrCat(tls_ ? "https" : "http", "://127.0.0.1:", port);
}

absl::Status EtcdCluster::Spawn(int i, bool new_cluster) {
  Member& m = members_[i];
  std::vector<std::string> initial;
  for (const Member& other : members_) {
    initial.push_back(absl::StrCat(other.name, "=", Url(other.peer_port)));
  }
  std::vector<std::string> args = {
      kEtcd,
      "--name", m.name,
      "--data-dir", absl::StrCat(dir_, "/", m.name, ".etcd"),
      "--listen-client-urls", Url(m.client_port),
      "--advertise-client-urls", Url(m.client_port),
      "--listen-peer-urls", Url(m.peer_port),
      "--initial-advertise-peer-urls", Url(m.peer_port),
      "--initial-cluster", absl::StrJoin(initial, ","),
      "--initial-cluster-token", token_,
      "--initial-cluster-state", new_cluster ? "new" : "existing",
      "--logger", "zap",
      "--log-outputs", "stderr",
  };
  if (tls_) {
    args.insert(args.end(), {"--cert-file", tls_->cert_file, "--key-file", tls_->key_file,
                             "--trusted-ca-file", tls_->ca_file, "--client-cert-auth",
                             "--peer-cert-file", tls_->cert_file, "--peer-key-file", tls_->key_file,
                             "--peer-trusted-ca-file", tls_->ca_file, "--peer-client-cert-auth"});
  }
  std::string log = absl::StrCat(dir_, "/", m.name, ".log");
  // Everything the child needs is prepared before fork: after it, only
  // async-signal-safe calls.
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    if (!absl::StartsWith(*e, "ETCD")) env_strings.push_back(*e);  // no ETCD_* from outside
  }
  std::vector<char*> envp;
  for (std::string& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  int log_fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return absl::InternalError("cannot open " + log);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    close(log_fd);
    return absl::InternalError("fork failed");
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    dup2(log_fd, STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
    execve(kEtcd, argv.data(), envp.data());
    _exit(127);
  }
  close(log_fd);
  m.pid = pid;
  return absl::OkStatus();
}

void EtcdCluster::Kill(int i) {
  Member& m = members_[i];
  if (m.pid <= 0) return;
  kill(m.pid, SIGKILL);
  waitpid(m.pid, nullptr, 0);
  m.pid = -1;
}

absl::Status EtcdCluster::Restart(int i, absl::Duration timeout) {
  Kill(i);
  // The data directory holds the member's identity: "existing" is not read.
  if (absl::Status s = Spawn(i, /*new_cluster=*/false); !s.ok()) return s;
  return WaitHealthy(i, timeout);
}

absl::Status EtcdCluster::WaitHealthy(int i, absl::Duration timeout) {
  Member& m = members_[i];
  grpc::ChannelArguments args;
  // Retries the connection every 100 ms while the member starts, not gRPC's default of 1 s and up.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 100);
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (tls_) {
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> made = tls::MakeChannelCredentials(*tls_);
    if (!made.ok()) return made.status();
    credentials = *made;
  }
  auto channel = grpc::CreateCustomChannel(endpoint(i), credentials, args);
  auto kv = etcdserverpb::KV::NewStub(channel);
  absl::Time deadline = absl::Now() + timeout;
  std::string last = "not started";
  while (true) {
    if (m.pid <= 0) return absl::FailedPreconditionError(m.name + " is not running");
    int status = 0;
    if (waitpid(m.pid, &status, WNOHANG) == m.pid) {
      m.pid = -1;
      return absl::InternalError(
          absl::StrCat("etcd ", m.name, " exited during start-up; its log ends:\n", LogTail(i)));
    }
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(std::min(deadline, absl::Now() + absl::Seconds(1))));
    context.AddMetadata("hasleader", "true");
    context.set_wait_for_ready(true);  // waits for the connection within the deadline
    etcdserverpb::RangeRequest request;
    request.set_key("health");
    etcdserverpb::RangeResponse response;
    grpc::Status s = kv->Range(&context, request, &response);
    if (s.ok()) return absl::OkStatus();
    last = s.error_message();
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat("etcd ", m.name, " at ", endpoint(i),
                                                      " not healthy within ",
                                                      absl::FormatDuration(timeout), ": ", last,
                                                      "; its log ends:\n", LogTail(i)));
    }
    // Polling a real external process: nothing tells us when it is ready.
    if (s.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) usleep(50 * 1000);
  }
}

std::string EtcdCluster::LogTail(int i, size_t bytes) const {
  std::ifstream in(absl::StrCat(dir_, "/", members_[i].name, ".log"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string text = buffer.str();
  return text.size() > bytes ? text.substr(text.size() - bytes) : text;
}

}  // namespace fleet::test
