#pragma once

// The engine's API as fleetctl uses it: the engines of one cluster (any of
// them may be given; calls end up at the leader), a deadline on every call,
// pages followed to the end, and gRPC errors turned into one readable line.

#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "fleet/v1/fleet.grpc.pb.h"
#include "grpcpp/security/credentials.h"

namespace fleet::ctl {

struct ConnectionOptions {
  // One engine address HOST:PORT, or several separated by commas: the engines
  // of one cluster, tried in that order (see Client).
  std::string endpoint = "127.0.0.1:7001";
  absl::Duration request_timeout = absl::Seconds(10);
  // Mutual TLS (the default): the CA the engine's certificate must chain to,
  // and fleetctl's own certificate and key (scripts/pki admin|viewer). One set
  // serves every engine: each has its own certificate with a SAN for its
  // address, checked against the address dialled.
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  bool insecure = false;  // plaintext, no certificates (--insecure)
};

// The addresses of `endpoints` ("HOST:PORT" or "HOST:PORT,HOST:PORT,...";
// blanks around an item are ignored; an IPv6 host goes in brackets), in
// order, without repeats; or INVALID_ARGUMENT, one line naming the first item
// that is empty or not HOST:PORT with a port 1..65535.
absl::StatusOr<std::vector<std::string>> ParseEndpoints(absl::string_view endpoints);

// Not thread-safe: one caller at a time (fleetctl is single-threaded).
class Client {
 public:
  // Checks the endpoint list (ParseEndpoints' INVALID_ARGUMENT) and the
  // transport: mutual TLS from the three files, or plaintext with insecure
  // (and then prints one warning line on `err`). INVALID_ARGUMENT, one line
  // saying what to give, when insecure is false and the files are not all
  // given, when both are given, or when a file cannot be read or holds no PEM
  // of its kind. Connecting happens on the first call, to each engine when
  // first needed.
  static absl::StatusOr<std::unique_ptr<Client>> Create(const ConnectionOptions& options,
                                                        std::ostream& err);

  // Each call goes to the engine that answered the last call (first: the
  // first endpoint). It returns that engine's answer, or its error with the
  // engine's own message (a call the client certificate's role may not make
  // is the engine's PERMISSION_DENIED naming the role needed).
  //
  // Engines that do not serve the call are skipped, each at most once per
  // call: a follower that names the leader (UNAVAILABLE with trailing
  // metadata "fleet-leader: HOST:PORT") is left for that leader, once per
  // call, and later calls go there; an engine that cannot be reached, or a
  // follower that does not know the leader yet, is left for the next
  // endpoint of the list. When no engine serves the call, the error is
  // UNAVAILABLE, one line naming every engine tried and why each failed: an
  // engine that cannot be reached by its address; a failed TLS handshake
  // with the likely causes (wrong CA, expired certificate, address not in the
  // engine's SANs); with insecure, an engine that closes the socket (it
  // speaks TLS) saying it needs the TLS flags; when every engine said it
  // does not know the leader, the engine's message (it says to retry).
  // Nothing else is retried: DEADLINE_EXCEEDED (the engine may have applied
  // the request) is returned naming the engine and --request-timeout. Each
  // try has its own --request-timeout. Create silences gRPC's own log lines
  // for the process, so each error is the one line fleetctl prints.
  // Creates (or replaces) `units` in requests of up to 100 units and about
  // 1 MiB of files (the engine's limit, and well within etcd's request size;
  // each request creates all its units or none). On an error, the requests
  // before it stay applied and the message says how many units they created.
  absl::Status CreateUnits(const std::vector<v1::CreateUnitRequest>& units);
  absl::StatusOr<v1::Unit> GetUnit(const std::string& name);
  absl::StatusOr<std::vector<v1::Unit>> ListUnits(const std::string& name_glob,
                                                  bool omit_contents);
  // Sets the desired state of every unit of `names`, up to 100 per request
  // (the engine's limit; each request changes all its units or none). On an
  // error, the requests before it stay applied and the message says how many
  // units they changed.
  absl::Status SetDesiredStates(const std::vector<std::string>& names, v1::DesiredState state);
  absl::Status DestroyUnit(const std::string& name);
  absl::StatusOr<std::vector<v1::UnitStatus>> ListUnitStates(const std::string& name_glob);
  absl::StatusOr<std::vector<v1::Machine>> ListMachines();

  // What systemctl status says on the unit's machine (asked of its agent
  // through the engine). The engine's errors about the unit or its agent
  // (not scheduled, agent not connected, agent too slow; trailing metadata
  // "fleet-relay") come as the engine wrote them and are never retried.
  absl::StatusOr<v1::GetUnitStatusResponse> GetUnitStatus(const v1::GetUnitStatusRequest& request);
  // Streams the unit's journal to `on_entry` until the engine ends the stream
  // (OK), or with `follow` until the unit's machine goes away (the engine's
  // UNAVAILABLE). Without follow the whole call has --request-timeout; with
  // follow it has no deadline. Engines are skipped as for the calls above
  // only before the first entry arrived; after that an error ends the call.
  // Errors as GetUnitStatus.
  absl::Status ReadJournal(const v1::ReadJournalRequest& request,
                           const std::function<void(const v1::JournalEntry&)>& on_entry);

  // The engine the next call goes to (HOST:PORT): the one that answered
  // last, or the first endpoint before any answered.
  const std::string& endpoint() const { return current_; }

 private:
  // What one try at one engine gave: its status, and whether part of the
  // answer already reached the caller (a stream's entries), after which the
  // call is not tried elsewhere.
  struct Attempt {
    grpc::Status status;
    bool partial = false;
  };
  enum class Deadline { kRequestTimeout, kNone };

  Client(ConnectionOptions options, std::vector<std::string> endpoints,
         std::shared_ptr<grpc::ChannelCredentials> credentials)
      : options_(std::move(options)),
        endpoints_(std::move(endpoints)),
        credentials_(std::move(credentials)),
        current_(endpoints_.front()) {}

  // Runs one call with the rule above: `issue(stub, context)` sends it to one
  // engine (the context has the deadline set) and returns a grpc::Status or
  // an Attempt. Returns OK, or the error to show (see above).
  template <typename Issue>
  absl::Status Call(Issue&& issue, Deadline deadline = Deadline::kRequestTimeout);
  // The stub for `address`, made on first use; owned by this Client.
  v1::Fleet::Stub& StubFor(const std::string& address);
  // The readable form of a transport error or timeout of the engine at
  // `address`; other codes keep the engine's message.
  absl::Status ToStatus(const std::string& address, const grpc::Status& status) const;

  const ConnectionOptions options_;
  const std::vector<std::string> endpoints_;  // never empty
  const std::shared_ptr<grpc::ChannelCredentials> credentials_;
  std::map<std::string, std::unique_ptr<v1::Fleet::Stub>> stubs_;  // by address
  std::string current_;
};

}  // namespace fleet::ctl
