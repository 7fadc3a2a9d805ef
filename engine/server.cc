#include "engine/server.h"

#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"

namespace fleet {

EngineServer::EngineServer(Engine* engine, const Leadership* leadership, const EngineServerOptions& options)
    : engine_(engine),
      relay_(engine, RelayOptions{options.agent_reply_timeout}),
      fleet_service_(engine, leadership, &relay_),
      agent_service_(engine, leadership, &relay_),
      tick_interval_(options.tick_interval) {}

absl::StatusOr<std::unique_ptr<EngineServer>> EngineServer::Start(Engine* engine, const Leadership* leadership,
                                                                  EngineServerOptions options) {
  std::unique_ptr<EngineServer> server(new EngineServer(engine, leadership, options));
  grpc::ServerBuilder builder;
  std::shared_ptr<grpc::ServerCredentials> credentials =
      options.credentials ? options.credentials : grpc::InsecureServerCredentials();
  builder.AddListeningPort(options.listen, credentials, &server->port_);
  builder.RegisterService(&server->fleet_service_);
  builder.RegisterService(&server->agent_service_);
  // Unit files are up to 1 MiB (kMaxUnitFileSize); a larger one still arrives
  // and is refused by the parser with a message that says the limit.
  builder.SetMaxReceiveMessageSize(4 * 1024 * 1024);
  // A second engine on a port in use must fail, not share it (SO_REUSEPORT).
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // The synchronous API runs each call on a thread of its own; by default it
  // keeps at most 2 idle threads and creates and joins one per concurrent
  // call, which profiling showed to be a large part of the engine's CPU under
  // many concurrent clients. Keep up to kMaxIdleThreads waiting instead.
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, kMaxIdleThreads);
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    if (server->server_ != nullptr) server->server_->Shutdown();
    server->server_.reset();
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.listen,
                                               " (address in use, or not an address of this host?)"));
  }
  server->loop_ = std::thread([s = server.get()] { s->Loop(); });
  return server;
}

EngineServer::~EngineServer() { Shutdown(); }

void EngineServer::Loop() {
  // A burst of changes (a pipeline starting thousands of units) leaves glibc
  // holding the freed pages of its requests and plans. Once no change came
  // for a whole tick interval, they go back to the system (malloc_trim holds
  // the allocator's locks, so never while requests stream in).
  constexpr absl::Duration kBusyPass = absl::Milliseconds(5);
  bool busy_since_trim = false;
  while (!stop_.HasBeenNotified()) {
    engine_->WaitForWork(tick_interval_);
    if (stop_.HasBeenNotified()) break;
    if (busy_since_trim && !engine_->ReconcilePending()) {  // the wait timed out: quiet
      malloc_trim(0);
      busy_since_trim = false;
    }
    const absl::Time start = absl::Now();
    if (absl::Status s = engine_->Tick(); !s.ok()) {
      LogError("reconcile: %s", s.ToString());
      // A failing store: do not spin; try again after one interval.
      stop_.WaitForNotificationWithTimeout(tick_interval_);
      continue;
    }
    // Batching: a pass holds the engine's lock while it plans, so passes back
    // to back would starve the API under a stream of changes. Waiting as long
    // as the pass took (at most kMaxBatchWait) lets the changes of that time
    // gather for the next pass; an idle engine still reacts at once, and a
    // machine whose agent_ttl runs out meanwhile is declared on time.
    const absl::Duration took = absl::Now() - start;
    if (took >= kBusyPass) busy_since_trim = true;
    stop_.WaitForNotificationWithTimeout(std::min({took, kMaxBatchWait, engine_->UntilNextExpiry()}));
  }
}

void EngineServer::Shutdown(absl::Duration grace) {
  if (shut_down_ || server_ == nullptr) return;  // nothing started: leave the engine alone
  shut_down_ = true;
  stop_.Notify();
  engine_->Shutdown();  // closes agent streams, wakes the loop
  server_->Shutdown(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(grace));
  server_->Wait();
  if (loop_.joinable()) loop_.join();
}

}  // namespace fleet
