#pragma once

// The leader's state machine: the desired state of the cluster (units, their
// desired states), the schedule, the machines whose agents are connected, and
// the unit states those agents report. Callers are the gRPC services
// (engine/api/), which translate requests, and a loop (engine/server.h) that
// calls Tick() whenever WaitForWork() returns.
//
// Data flow:
//   - API writes go to the Store first (one transaction per request, compared
//     against the revision held in memory) and then to memory; on any error
//     nothing changes, in the store or in memory.
//   - Every change marks a reconcile as pending. Tick() declares machines dead
//     (Liveness), then runs one scheduler pass over the in-memory
//     ClusterSnapshot (kept up to date incrementally, never rebuilt), writes
//     the plan to the store in transactions of at most max_ops_per_txn operations,
//     and sends each connected agent whose unit set changed one ScheduleDelta.
//     Changes that arrive while a pass runs wait for the next pass (batching).
//   - An agent gets its full set on Register, then deltas only; an agent whose
//     set did not change receives nothing.
//   - Unit states and heartbeats stay in memory (never written per beat).
//     Machines are written to /fleet/machines/ID by the first Tick after they
//     register (all registered meanwhile in one transaction; a registration
//     waits for no store write) and deleted when declared dead. The record
//     only makes a machine presumed alive after a restart (below).
//
// Decisions (documented here because the proto leaves them open):
//   - CreateUnit on an existing unit with the same hash (fleet's hash of the
//     normalized file) is a no-op; its desired state changes only when the
//     request names one (UNSPECIFIED keeps the current state; for a new unit
//     UNSPECIFIED means INACTIVE).
//   - A template unit (foo@.service) may be stored but never scheduled: asking
//     for it to be loaded or launched is FAILED_PRECONDITION.
//   - A disconnected agent keeps its machine alive until agent_ttl passes
//     since it was last heard from; a machine declared dead has its stream (if
//     any) closed with UNAVAILABLE, its record deleted and its states dropped.
//   - A second Register for a machine whose agent is connected and alive is
//     ALREADY_EXISTS; if the connected agent is silent past agent_ttl the new
//     stream replaces it.
//   - After Create(), machines found in the store are presumed alive for one
//     agent_ttl (their placements are kept) so agents can reconnect.
//
// Leadership (engine/leadership.h). Only while this engine leads does it
// write, schedule, declare machines dead and hold agent streams; every write
// transaction carries the leadership's WriteGuard, so a leader deposed before
// it noticed writes nothing. Tick() follows the leadership: on taking the
// lead it reloads everything from the store (another leader wrote meanwhile)
// and presumes the stored machines alive for one agent_ttl, as after Create;
// on losing it, it closes the agent streams (agents go to the new leader) and
// keeps the last known state for reads. Wake() makes the loop Tick at once.
//
// Concurrency of writes. CreateUnit, SetUnit(s)DesiredState and DestroyUnit
// release the engine's mutex while their transaction is in the store (an
// fdatasync), so concurrent requests share one group commit of the embedded
// store instead of queueing for the mutex one fsync each; reads go on
// meanwhile and see the state before the write (a call returns only once its
// write is durable and in memory). Writes of the same unit still run one after
// the other (the second waits for the first to land), so their compare on the
// unit's mod revision behaves as before. Tick() waits for the writes in
// flight to land (holding new ones back) before it plans or reloads, so a
// plan is made only from unit records that are in memory; it then writes the
// plan with the mutex released too, while the plan's units count as in
// flight (writes of other units go on and make the next pass).
//
// Thread-safety: every public method is thread-safe (one mutex). AgentChannel
// methods are called with that mutex held, so a channel must never call back
// into the Engine from Send/Close.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/intern_pool.h"
#include "common/shared_name.h"
#include "common/unit/fleet_options.h"
#include "engine/leadership.h"
#include "engine/liveness.h"
#include "engine/scheduler/scheduler.h"
#include "engine/store/store.h"
#include "engine/unit_status_wire.h"
#include "fleet/v1/agent.pb.h"
#include "fleet/v1/fleet.pb.h"
#include "fleet/v1/units.pb.h"

namespace fleet {

// Store keys.
inline constexpr char kUnitsPrefix[] = "/fleet/units/";
inline constexpr char kSchedulePrefix[] = "/fleet/schedule/";
inline constexpr char kMachinesPrefix[] = "/fleet/machines/";

// Limits of the API.
inline constexpr int kDefaultPageSize = 1000;
inline constexpr int kMaxPageSize = 10000;
inline constexpr size_t kMaxMachineIdBytes = 128;
inline constexpr int kMaxOpsPerTxn = 128;  // etcd's default --max-txn-ops
// The embedded store has no such limit: a pass writes its schedule in
// transactions of this many operations (8x fewer fsyncs). Not more: with
// 10,000, bench/scale's medium preset launched 3x slower (writers queue
// behind one long apply) while the small preset gained no more.
inline constexpr int kMaxOpsPerEmbeddedTxn = 1000;
// Units per CreateUnits and SetUnitsDesiredState: one compare each, plus the
// leadership guard's, must stay within etcd's 128 compares per transaction.
inline constexpr int kMaxUnitsPerRequest = 100;

// The engine end of one agent stream.
class AgentChannel {
 public:
  virtual ~AgentChannel() = default;
  // Queues `message` for the agent; never blocks.
  virtual void Send(fleet::v1::EngineMessage message) = 0;
  // Ends the stream with `status`; the engine sends nothing after this.
  virtual void Close(absl::Status status) = 0;
};

// Where a request about one unit went (Engine::SendToUnitAgent).
struct AgentRoute {
  std::string machine_id;
  int64_t session = 0;           // of the agent stream it was sent on
  fleet::v1::UnitStatus status;  // the unit's entry as ListUnitStates has it
};

struct EngineOptions {
  absl::Duration agent_ttl = absl::Seconds(30);
  // How often agents are asked to send a heartbeat; zero = agent_ttl / 3.
  absl::Duration heartbeat_interval = absl::ZeroDuration();
  // Who leads (not owned; must outlive the Engine). nullptr: this engine
  // alone, always leading, writes unguarded (tests).
  const Leadership* leadership = nullptr;
  // Operations per transaction when writing a plan: kMaxOpsPerTxn for etcd,
  // kMaxOpsPerEmbeddedTxn for the embedded store.
  int max_ops_per_txn = kMaxOpsPerTxn;
};

class Engine {
 public:
  // Loads units, schedule and machines from `store`. `store` and `clock` are
  // not owned and must outlive the Engine. Errors: the store's error, or
  // DATA_LOSS naming a key whose record cannot be decoded. Units whose stored
  // file no longer parses are kept but not scheduled; `startup_warnings()`
  // says which (the caller logs them).
  static absl::StatusOr<std::unique_ptr<Engine>> Create(Store* store, const Clock* clock,
                                                        EngineOptions options);

  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  ~Engine();

  const std::vector<std::string>& startup_warnings() const { return startup_warnings_; }
  absl::Duration heartbeat_interval() const { return heartbeat_interval_; }

  // --- Public API (fleet.v1.Fleet). See proto/fleet/v1/fleet.proto. Errors:
  // INVALID_ARGUMENT (bad name, file, size, desired state, page token/size),
  // NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION (template units), ABORTED
  // (the stored record changed under us: retry), or the store's error.
  absl::StatusOr<fleet::v1::CreateUnitResponse> CreateUnit(const fleet::v1::CreateUnitRequest& request);
  // Up to kMaxUnitsPerRequest units in one transaction: all are created (or
  // replaced, or changed) or none (INVALID_ARGUMENT for too many or a name
  // given twice; the first unit that cannot be created is named).
  absl::StatusOr<fleet::v1::CreateUnitsResponse> CreateUnits(const fleet::v1::CreateUnitsRequest& request);
  absl::StatusOr<fleet::v1::Unit> GetUnit(const std::string& name);
  absl::StatusOr<fleet::v1::ListUnitsResponse> ListUnits(const fleet::v1::ListUnitsRequest& request);
  absl::StatusOr<fleet::v1::Unit> SetUnitDesiredState(
      const fleet::v1::SetUnitDesiredStateRequest& request);
  // Up to kMaxUnitsPerRequest units in one transaction: all change or none
  // (INVALID_ARGUMENT for too many, empty or duplicated names; NOT_FOUND or
  // FAILED_PRECONDITION naming the first unit that cannot change).
  absl::StatusOr<fleet::v1::SetUnitsDesiredStateResponse> SetUnitsDesiredState(
      const fleet::v1::SetUnitsDesiredStateRequest& request);
  absl::Status DestroyUnit(const std::string& name);
  // One entry per unit and machine it runs on (a global unit has one per
  // machine). A page holds at most page_size entries, except that a unit's
  // entries are never split over pages: a page always holds at least one
  // unit, with all its entries. Returns the page as a serialized
  // fleet.v1.ListUnitStatesResponse (engine/unit_status_wire.h says why).
  absl::StatusOr<std::string> ListUnitStates(const fleet::v1::ListUnitStatesRequest& request);
  fleet::v1::ListMachinesResponse ListMachines();

  // --- Agents (fleet.v1.AgentService).
  // Registers the agent of `reg.machine().id()` on `channel` and sends it its
  // full schedule. `channel` is not owned; it stays in use until
  // AgentDisconnected(session) or until the engine calls channel->Close().
  // Returns the session id (> 0). Errors: INVALID_ARGUMENT (bad machine id),
  // ALREADY_EXISTS (another live stream has this machine), UNAVAILABLE
  // (shutting down, or not the leader). Writes nothing: the next Tick records
  // the machine in the store.
  absl::StatusOr<int64_t> AgentRegistered(const fleet::v1::Register& reg, AgentChannel* channel);
  // A heartbeat / state report on `session`. FAILED_PRECONDITION when the
  // session is no longer registered (the stream should end). A report never
  // waits for the engine's mutex: it is queued, and applied at once if the
  // mutex is free, else by the next call that reads or replaces reported
  // states (a listing, a relayed status request, a pass, a registration or
  // disconnection), so every read that starts after AgentReport returned
  // sees it.
  absl::Status AgentHeartbeat(int64_t session);
  absl::Status AgentReport(int64_t session, fleet::v1::StateReport report);
  // The stream of `session` ended; no-op for an unknown session. The machine
  // stays alive until agent_ttl passes without news.
  void AgentDisconnected(int64_t session);

  // --- Requests relayed to agents (engine/relay.h).
  // Finds the machine that runs unit `name` and sends `message` to its agent.
  // For a global unit `machine` names the machine (exact id or unique prefix
  // of one that runs it); for other units it may be empty, else it must name
  // the unit's machine. `on_route` is called with the route just before the
  // message is queued, with the engine's lock held (it must not call back into
  // the Engine). Errors: INVALID_ARGUMENT (empty name, ambiguous prefix),
  // NOT_FOUND (no such unit), FAILED_PRECONDITION "unit X is not scheduled on
  // any machine" (with the reason when known; also for a global unit without
  // a machine named, or a machine that does not run it), UNAVAILABLE "the
  // agent of machine M is not connected".
  absl::StatusOr<AgentRoute> SendToUnitAgent(const std::string& name, const std::string& machine,
                                             fleet::v1::EngineMessage message,
                                             const std::function<void(const AgentRoute&)>& on_route);
  // Sends `message` on the agent stream `session` if it is still registered;
  // false otherwise (the message is dropped).
  bool SendToSession(int64_t session, fleet::v1::EngineMessage message);

  // --- The loop.
  // Follows the leadership (see the top of this file); then, when leading,
  // declares silent machines dead, records newly registered ones, and runs a
  // pending reconcile pass. Errors (reading the store on taking the lead,
  // writing machine records or the plan) leave the work
  // pending (retried on the next Tick) and are returned for the caller to log.
  absl::Status Tick();
  // The leadership changed: makes WaitForWork return so the loop Ticks now.
  void Wake();
  // True while this engine acts as the leader (as of the last Tick).
  bool leading();
  // Blocks (real time) until a reconcile is pending, Shutdown() was called,
  // the next machine's agent_ttl runs out (so a dead machine is declared on
  // time, not up to one `timeout` late), or `timeout` passed.
  void WaitForWork(absl::Duration timeout);
  // How long until the next machine's agent_ttl runs out (zero once one has;
  // infinite when no machine is tracked). The loop's wait between passes
  // ends then too, so a long wait after a long pass delays no declaration.
  absl::Duration UntilNextExpiry();
  // True when a change waits for the next Tick.
  bool ReconcilePending();
  // Closes every agent stream with UNAVAILABLE and refuses new ones.
  void Shutdown();

 private:
  // A stored unit but for its name, which is its key in units_ (a v1::Unit
  // held the name again and allocated each of its strings apart: 266 bytes
  // of heap per unit at 100,000 units).
  // A unit file as submitted and fleet's hash of it. Interned (files_): the
  // instances of a template have their template's file, and at 100,000 units
  // a copy of file and hash per record was a tenth of the engine's heap.
  struct UnitFileText {
    std::string contents;
    std::string hash;
    bool operator==(const UnitFileText&) const = default;
    template <typename H>
    friend H AbslHashValue(H h, const UnitFileText& f) {
      return H::combine(std::move(h), f.contents, f.hash);
    }
  };
  struct UnitRecord {
    std::shared_ptr<const UnitFileText> file;  // never null
    fleet::v1::DesiredState desired_state = fleet::v1::DESIRED_STATE_INACTIVE;
    int64_t create_revision = 0;
    int64_t mod_revision = 0;
    SharedFleetOptions options = ShareFleetOptions({});  // shared with its view in snapshot_
    bool is_template = false;
    bool schedulable = true;  // false when the stored file no longer parses
  };
  // The API's form of unit `name`, stored as `record` (without its file when
  // `with_contents` is false: clients that submit thousands of units ask so).
  static fleet::v1::Unit UnitMessage(absl::string_view name, const UnitRecord& record,
                                     bool with_contents = true);
  // The store's value for it, with `desired_state` (which a write is about to
  // give it): a v1::Unit without revisions (the store's own are the truth).
  static std::string StoredValue(const std::string& name, const UnitRecord& record,
                                 fleet::v1::DesiredState desired_state);
  // One unit of a machine's desired set: what decides whether the agent must
  // be told again. Every change of a unit's file or desired state is a store
  // write, so its mod revision says whether the agent has the current
  // version; what it is stays in units_, shared by all machines (a copy of
  // the hash and state here was about 100 bytes per unit placed).
  struct SetEntry {
    SharedName name;
    int64_t mod_revision = 0;
    bool operator==(const SetEntry&) const = default;
  };
  // A machine's desired set, sorted by name: it is computed in that order
  // (UnitsForMachine), compared with the previous one in a single merge, and
  // holds no tree nodes.
  using UnitSet = std::vector<SetEntry>;
  static bool SetHas(const UnitSet& set, std::string_view name);
  // A unit's state as its agent reported it, held compactly (one per unit
  // placed, so it counts in the engine's memory per unit): the unit's name is
  // the map key, the machine is the record's, and systemd's state words are
  // shared (a v1::UnitState allocates every string).
  struct StateWords {
    std::string load_state;
    std::string active_state;
    std::string sub_state;
    bool operator==(const StateWords&) const = default;
    template <typename H>
    friend H AbslHashValue(H h, const StateWords& w) {
      return H::combine(std::move(h), w.load_state, w.active_state, w.sub_state);
    }
  };
  struct ReportedState {
    // Interned (state_words_): most units of a cluster are "loaded active
    // running", and three strings per unit were 96 bytes of its record.
    std::shared_ptr<const StateWords> words;
    uint32_t main_pid = 0;
    int32_t exit_status = 0;
    int64_t since_unix_micros = 0;
    // The hash of the file the agent runs. Usually the unit's current file's:
    // then it points into that UnitFileText (no copy per unit placed).
    std::shared_ptr<const std::string> unit_hash;
  };
  struct MachineRecord {
    fleet::v1::Machine machine;
    int64_t session = 0;              // 0 = no agent connected
    AgentChannel* channel = nullptr;  // set iff session != 0
    UnitSet units;  // its desired set as last computed
    // As its agent reported, by unit: a hash map, for every entry of a
    // listing looks one up (a std::map's string compares at 100,000 units).
    NameMap<ReportedState> states;
  };

  Engine(Store* store, const Clock* clock, EngineOptions options);
  // Reads units, schedule and machines from the store into memory (empty
  // before). Warnings about units kept but not scheduled go to `warnings`.
  absl::Status LoadLocked(std::vector<std::string>* warnings) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Taking the lead: forgets everything in memory and loads it again.
  absl::Status ReloadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Closes every agent stream with `why` (losing the lead, reloading, shutting
  // down); the rest of the state stays (a follower still answers reads).
  void CloseAgentStreamsLocked(const absl::Status& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Every store write of the engine: refuses when not leading, adds the
  // leadership's guard, resolves a write whose outcome the store could not
  // confirm (ResolveOutcome: applied, sent once more, or failed; so a lost
  // answer from etcd is not a failed request), and turns a transaction that
  // failed on the guard into UNAVAILABLE (so `succeeded` false means the
  // caller's own compares).
  absl::StatusOr<TxnResult> CommitLocked(Transaction txn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // CommitLocked for a unit write: releases mu_ while the store writes and
  // takes it again before returning. The caller holds the unit's write slot
  // (UnitWriteSlot) and must not keep pointers into state that another
  // thread may change meanwhile (records of other units may be added or
  // removed; the caller's own unit record stays put).
  absl::StatusOr<TxnResult> CommitUnitLocked(Transaction txn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The shared part of both: `release` says whether mu_ is released around
  // the store's Txn.
  absl::StatusOr<TxnResult> CommitImplLocked(Transaction txn, bool release)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Waits (mu_ released meanwhile) until no write of any of `names` is in
  // flight and Tick does not hold writes back; then marks them all in flight.
  void BeginUnitWritesLocked(const std::vector<std::string>& names) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EndUnitWritesLocked(const std::vector<std::string>& names) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Holds new unit writes back and waits (mu_ released meanwhile) until the
  // ones in flight have landed in memory.
  void DrainUnitWritesLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Keeps `state`, reported by the agent of `record`, as its unit's state there.
  void KeepReportedStateLocked(MachineRecord& record, const fleet::v1::UnitState& state)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Inserts/replaces `record` in memory and the snapshot; marks machines
  // dirty; asks for a reconcile pass when the unit runs, ran or is scheduled.
  void PutUnitLocked(const std::string& name, UnitRecord record) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether the scheduler sees `name`: in the snapshot's units or schedule.
  bool InScheduleLocked(absl::string_view name) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void EraseUnitLocked(const std::string& name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Puts `unit` in the schedule on `machine` (empty: takes it out) and keeps
  // scheduled_on_ in step; marks the machines it leaves and joins dirty.
  // `unit` is held as given: pass a name of names_ (NamePool::Share), as the
  // plan's are, so that the schedule shares its chars.
  void SetScheduleLocked(const SharedName& unit, absl::string_view machine)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops the GlobalSet kept for set computation when a unit of the
  // snapshot's units was global before its change or is after it (false for
  // a unit absent from them); every machine's set is then computed again.
  void NoteGlobalsChangeLocked(bool was_global, bool is_global) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  const GlobalSet& GlobalsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MarkUnitMachinesDirtyLocked(absl::string_view name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DeclareDeadLocked(const std::string& machine_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes machines_to_record_, max_ops_per_txn_ per transaction; what is not
  // written stays for the next Tick.
  absl::Status RecordMachinesLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status ReconcileLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether the next Tick has something to do: a pass, sets to push, or
  // machines to record (what ReconcilePending reports and WaitForWork waits for).
  bool TickHasWorkLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Notes that `unit` may have joined, left or changed in `machine`'s set.
  void MarkDirtyLocked(absl::string_view machine, const SharedName& unit)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Brings the desired set of every dirty machine up to date and sends each
  // agent the delta.
  void PushSetsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The two ways to do it for one machine: compute its whole set again, or
  // look again at the `changed` units only. Both give the same set.
  void PushWholeSetLocked(const std::string& machine_id, MachineRecord& record)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PushChangedUnitsLocked(const std::string& machine_id, MachineRecord& record,
                              const NameSet& changed)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sends `delta` to the agent of `record` unless it is empty.
  void SendDeltaLocked(MachineRecord& record, fleet::v1::ScheduleDelta delta)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // scheduled_on_'s units of `machine_id` (an empty set when it has none).
  const NameSet& ScheduledOnLocked(const std::string& machine_id) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // The desired set of one machine, from scheduled_on_ and the kept
  // GlobalSet: O(its units), whatever the size of the cluster.
  UnitSet ComputeSetLocked(const std::string& machine_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The entry of unit `name`, stored as `record`, in a machine's set.
  static SetEntry EntryOf(const SharedName& name, const UnitRecord& record);
  // The message form of one unit of a set, with its file.
  fleet::v1::ScheduledUnit ScheduledUnitLocked(const SetEntry& entry)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string MachineOfSession(int64_t session) ABSL_LOCKS_EXCLUDED(beat_mu_);
  // Applies the queued state reports, in the order they arrived (a report of
  // a session that is gone is dropped: its machine's next Register carries
  // the full state).
  void ApplyReportsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) ABSL_LOCKS_EXCLUDED(reports_mu_);
  // Why unit `name`, stored as `record`, runs nowhere: its stored file no longer parses, or
  // what the last plan said ("" when it said nothing, or when a change since
  // may have made it stale).
  absl::string_view UnscheduledReasonLocked(absl::string_view name, const UnitRecord& record) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The ListUnitStates entry of unit `name`, stored as `record`, on
  // `machine_id` ("" = not placed): views valid while mu_ is held and
  // nothing changes.
  UnitStatusFields StatusLocked(absl::string_view name, const UnitRecord& record,
                                absl::string_view machine_id) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Store* const store_;
  const Clock* const clock_;
  const Leadership* const leadership_;  // nullptr: always leading
  const absl::Duration heartbeat_interval_;
  const size_t max_ops_per_txn_;
  const absl::Duration agent_ttl_;
  std::vector<std::string> startup_warnings_;  // written by Create only

  absl::Mutex mu_;
  // Heartbeats take only this lock, never mu_: a heartbeat must not wait
  // behind a long pass or a store write, or a live machine is declared dead
  // because the engine was busy. Taken after mu_ when both are needed.
  absl::Mutex beat_mu_ ABSL_ACQUIRED_AFTER(mu_);
  Liveness liveness_ ABSL_GUARDED_BY(beat_mu_);
  // State reports wait here, not for mu_ (see AgentReport). They arrive on
  // gRPC's few callback threads: when each waited for mu_ behind a pass at
  // 200,000 units, those threads were all blocked and the engine stopped
  // reading its sockets. Launching the large preset's 200,000 units took 45
  // to 60 s that way, and 20 s with the reports queued.
  struct QueuedReport {
    int64_t session;
    fleet::v1::StateReport report;
  };
  absl::Mutex reports_mu_ ABSL_ACQUIRED_AFTER(mu_, beat_mu_);
  std::vector<QueuedReport> queued_reports_ ABSL_GUARDED_BY(reports_mu_);
  // Every stored unit, by name. A node map: found in O(1) (pushing sets looks
  // up every placed unit; a std::map's string compares were a tenth of the
  // engine's time during a launch), and a record stays put while others come
  // and go (CommitUnitLocked relies on that). unit_names_ holds its keys in
  // order, for listing and paging.
  NodeNameMap<UnitRecord> units_ ABSL_GUARDED_BY(mu_);
  absl::btree_set<absl::string_view> unit_names_ ABSL_GUARDED_BY(mu_);
  FleetOptionsPool options_pool_ ABSL_GUARDED_BY(mu_);  // of the records in units_
  InternPool<StateWords> state_words_ ABSL_GUARDED_BY(mu_);  // of MachineRecord::states
  InternPool<UnitFileText> files_ ABSL_GUARDED_BY(mu_);       // of the records in units_
  // Unit names and machine ids, wherever the engine keeps them: each name is
  // held by its record, view, schedule entry, sets and reported states.
  NamePool names_ ABSL_GUARDED_BY(mu_);
  // Alive machines; found by any string (std::less<>).
  std::map<std::string, MachineRecord, std::less<>> machines_ ABSL_GUARDED_BY(mu_);
  ClusterSnapshot snapshot_ ABSL_GUARDED_BY(mu_);
  Reconciler reconciler_ ABSL_GUARDED_BY(mu_);  // of snapshot_
  // snapshot_.schedule by machine: machine id -> its scheduled units (dead
  // machines included until their units move). Makes a machine's set cost
  // its own units, not a scan of the whole schedule.
  NameMap<NameSet> scheduled_on_ ABSL_GUARDED_BY(mu_);
  std::optional<GlobalSet> globals_ ABSL_GUARDED_BY(mu_);  // of snapshot_; built when needed
  absl::flat_hash_map<std::string, std::string> unplaceable_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<int64_t, std::string> sessions_ ABSL_GUARDED_BY(beat_mu_);  // -> machine id
  // Machines whose desired set changed since the last push -> the units that
  // changed there. A push costs those units, not the machines' whole sets:
  // when 5% of the machines died, the 5% of the units that moved made almost
  // every machine dirty, and each set was computed again in full.
  // all_machines_dirty_ asks for every machine's whole set.
  NameMap<NameSet> dirty_machines_ ABSL_GUARDED_BY(mu_);
  bool all_machines_dirty_ ABSL_GUARDED_BY(mu_) = false;
  bool reconcile_pending_ ABSL_GUARDED_BY(mu_) = false;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  bool leading_ ABSL_GUARDED_BY(mu_) = false;
  bool woken_ ABSL_GUARDED_BY(mu_) = false;  // Wake() since the last Tick
  int64_t next_session_ ABSL_GUARDED_BY(mu_) = 1;
  // Units whose write is in the store with mu_ released (CommitUnitLocked).
  NameSet units_in_flight_ ABSL_GUARDED_BY(mu_);
  bool writes_held_ ABSL_GUARDED_BY(mu_) = false;  // DrainUnitWritesLocked waits
  // Registered machines whose record the next Tick writes: id -> v1::Machine.
  absl::flat_hash_map<std::string, std::string> machines_to_record_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fleet
