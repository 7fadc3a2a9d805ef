#include "engine/engine.h"

#include <fnmatch.h>

#include <algorithm>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "common/unit/unit.h"
#include "engine/store/txn_outcome.h"
#include "fleet/v1/store.pb.h"

namespace fleet {
namespace {

using ::fleet::v1::DesiredState;

bool Runs(DesiredState state) {
  return state == v1::DESIRED_STATE_LOADED || state == v1::DESIRED_STATE_LAUNCHED;
}

std::string StateName(DesiredState state) {
  switch (state) {
    case v1::DESIRED_STATE_UNSPECIFIED:
      return "unspecified";
    case v1::DESIRED_STATE_INACTIVE:
      return "inactive";
    case v1::DESIRED_STATE_LOADED:
      return "loaded";
    case v1::DESIRED_STATE_LAUNCHED:
      return "launched";
    case v1::DesiredState_INT_MIN_SENTINEL_DO_NOT_USE_:
    case v1::DesiredState_INT_MAX_SENTINEL_DO_NOT_USE_:
      break;
  }
  return absl::StrCat("unknown (", static_cast<int>(state), ")");
}

// INVALID_ARGUMENT for a value that is not one of the enum's states.
absl::Status CheckKnownState(const std::string& unit, int value) {
  if (!v1::DesiredState_IsValid(value)) {
    return absl::InvalidArgumentError(absl::StrCat("unit ", ShowName(unit), ": unknown desired state ", value,
                                                   " (use inactive, loaded or launched)"));
  }
  return absl::OkStatus();
}

absl::Status CheckMachineId(const std::string& id) {
  if (id.empty()) return absl::InvalidArgumentError("machine id is empty");
  if (id.size() > kMaxMachineIdBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("machine id is ", id.size(), " bytes; at most ", kMaxMachineIdBytes));
  }
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.';
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat("machine id \"", id, "\" has a character other than letters, digits, - _ ."));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<int> PageSize(int requested) {
  if (requested < 0 || requested > kMaxPageSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size ", requested, " is out of range (0 = default, at most ", kMaxPageSize, ")"));
  }
  return requested == 0 ? kDefaultPageSize : requested;
}

// `name` is a unit's key in units_: its chars are NUL-terminated, so a
// listing with a glob copies no name.
bool GlobMatches(const std::string& glob, const SharedName& name) {
  return glob.empty() || fnmatch(glob.c_str(), name.c_str(), 0) == 0;
}

// Orders the entries of a desired set (Engine::UnitSet) against a name.
constexpr auto kEntryBefore = [](const auto& entry, std::string_view name) {
  return entry.name < name;
};

}  // namespace

Engine::Engine(Store* store, const Clock* clock, EngineOptions options)
    : store_(store),
      clock_(clock),
      leadership_(options.leadership),
      heartbeat_interval_(options.heartbeat_interval > absl::ZeroDuration() ? options.heartbeat_interval
                                                                             : options.agent_ttl / 3),
      max_ops_per_txn_(static_cast<size_t>(std::max(1, options.max_ops_per_txn))),
      agent_ttl_(options.agent_ttl),
      liveness_(options.agent_ttl) {}

Engine::~Engine() = default;

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(Store* store, const Clock* clock,
                                                       EngineOptions options) {
  if (options.agent_ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("agent_ttl must be more than zero");
  }
  std::unique_ptr<Engine> engine(new Engine(store, clock, options));
  absl::MutexLock lock(&engine->mu_);
  if (absl::Status s = engine->LoadLocked(&engine->startup_warnings_); !s.ok()) return s;
  // An engine that does not lead yet keeps what it loaded for reads, and
  // loads again when it takes the lead (Tick).
  engine->leading_ = engine->leadership_ == nullptr || engine->leadership_->IsLeader();
  return engine;
}

absl::Status Engine::LoadLocked(std::vector<std::string>* warnings) {
  absl::StatusOr<RangeResult> units = store_->Range(kUnitsPrefix);
  if (!units.ok()) return units.status();
  for (const KeyValue& kv : units->kvs) {
    v1::Unit unit;
    if (!unit.ParseFromString(kv.value)) {
      return absl::DataLossError(absl::StrCat("store key ", kv.key, ": not a fleet.v1.Unit record"));
    }
    if (kv.key != kUnitsPrefix + unit.name()) {
      return absl::DataLossError(absl::StrCat("store key ", kv.key, " holds unit \"", unit.name(), "\""));
    }
    UnitRecord record{.file = files_.Share({.contents = std::move(*unit.mutable_contents()),
                                            .hash = std::move(*unit.mutable_hash())}),
                      .desired_state = unit.desired_state(),
                      .create_revision = kv.create_revision,
                      .mod_revision = kv.mod_revision};
    absl::StatusOr<ParsedUnit> parsed = ParseUnit(unit.name(), record.file->contents);
    if (parsed.ok()) {
      record.options = options_pool_.Share(std::move(parsed->options));
      record.is_template = parsed->name.IsTemplate();
    } else {
      record.schedulable = false;
      warnings->push_back(absl::StrCat("unit ", unit.name(),
                                               " is kept but not scheduled: its stored file no longer parses: ",
                                               parsed.status().message()));
    }
    PutUnitLocked(unit.name(), std::move(record));
  }

  absl::StatusOr<RangeResult> schedule = store_->Range(kSchedulePrefix);
  if (!schedule.ok()) return schedule.status();
  for (const KeyValue& kv : schedule->kvs) {
    v1::ScheduleRecord record;
    if (!record.ParseFromString(kv.value)) {
      return absl::DataLossError(absl::StrCat("store key ", kv.key, ": not a fleet.v1.ScheduleRecord"));
    }
    SetScheduleLocked(names_.Share(absl::string_view(kv.key).substr(sizeof(kSchedulePrefix) - 1)),
                      record.machine_id());
  }

  absl::StatusOr<RangeResult> machines = store_->Range(kMachinesPrefix);
  if (!machines.ok()) return machines.status();
  absl::Time now = clock_->Now();
  for (const KeyValue& kv : machines->kvs) {
    v1::Machine machine;
    if (!machine.ParseFromString(kv.value)) {
      return absl::DataLossError(absl::StrCat("store key ", kv.key, ": not a fleet.v1.Machine"));
    }
    MachineView view;
    view.id = machine.id();
    view.metadata.insert(machine.metadata().begin(), machine.metadata().end());
    view.capacity = machine.capacity();
    snapshot_.machines[machine.id()] = std::move(view);
    {
      absl::MutexLock beat(&beat_mu_);
      liveness_.Touch(machine.id(), now);  // presumed alive for one agent_ttl
    }
    machines_[machine.id()].machine = std::move(machine);
  }
  reconcile_pending_ = true;
  all_machines_dirty_ = true;
  PushSetsLocked();  // fills each machine's set (no agent is connected yet)
  return absl::OkStatus();
}

absl::Status Engine::ReloadLocked() {
  DrainUnitWritesLocked();  // a write in flight lands before the state is dropped
  // No stream may outlive the records it points into.
  CloseAgentStreamsLocked(absl::UnavailableError("this engine is no longer the leader"));
  unit_names_.clear();
  units_.clear();
  machines_.clear();
  snapshot_ = ClusterSnapshot();
  scheduled_on_.clear();
  globals_.reset();
  machines_to_record_.clear();
  unplaceable_.clear();
  dirty_machines_.clear();
  all_machines_dirty_ = false;
  {
    absl::MutexLock beat(&beat_mu_);
    liveness_ = Liveness(agent_ttl_);
  }
  // The same stored files as at start-up: their warnings were logged then.
  std::vector<std::string> warnings;
  return LoadLocked(&warnings);
}

void Engine::CloseAgentStreamsLocked(const absl::Status& why) {
  for (auto& [id, record] : machines_) {
    if (record.channel == nullptr) continue;
    record.channel->Close(why);
    record.channel = nullptr;
    record.session = 0;
  }
  absl::MutexLock beat(&beat_mu_);
  sessions_.clear();
}

absl::StatusOr<TxnResult> Engine::CommitLocked(Transaction txn) {
  return CommitImplLocked(std::move(txn), /*release=*/false);
}

absl::StatusOr<TxnResult> Engine::CommitUnitLocked(Transaction txn) {
  return CommitImplLocked(std::move(txn), /*release=*/true);
}

absl::StatusOr<TxnResult> Engine::CommitImplLocked(Transaction txn, bool release) {
  if (!leading_) return absl::UnavailableError("this engine is not the leader; nothing was written");
  absl::StatusOr<std::vector<Compare>> guard = std::vector<Compare>{};
  if (leadership_ != nullptr) guard = leadership_->WriteGuard();
  if (!guard.ok()) {
    return absl::UnavailableError(
        absl::StrCat(guard.status().message(), "; nothing was written"));
  }
  txn.compares.insert(txn.compares.begin(), guard->begin(), guard->end());
  absl::StatusOr<TxnResult> result;
  auto commit = [this, &txn, &result] {
    result = store_->Txn(txn);
    if (IsOutcomeUnknown(result.status())) result = ResolveOutcome(*store_, txn, result.status());
  };
  if (release) {
    // Concurrent unit writes meet in the store's group commit (see engine.h).
    mu_.Unlock();
    commit();
    mu_.Lock();
  } else {
    commit();
  }
  if (leadership_ == nullptr || !result.ok() || result->succeeded) return result;
  // Failed: on the caller's compares, or on the guard? Read the guard's keys.
  for (const Compare& compare : *guard) {
    absl::StatusOr<KeyValue> key = store_->Get(compare.key);
    if (absl::IsNotFound(key.status()) ||
        (key.ok() && key->create_revision != compare.number)) {
      return absl::UnavailableError(
          "this engine lost the leadership (its leader key is gone); nothing was written");
    }
    if (!key.ok()) return key.status();
  }
  return result;
}

void Engine::BeginUnitWritesLocked(const std::vector<std::string>& names) {
  auto free = [this, &names]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !writes_held_ && std::none_of(names.begin(), names.end(), [this](const std::string& name)
                                             ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
                                               return units_in_flight_.contains(name);
                                             });
  };
  // All at once: taking them one by one could deadlock two overlapping batches.
  mu_.Await(absl::Condition(&free));
  units_in_flight_.insert(names.begin(), names.end());
}

void Engine::EndUnitWritesLocked(const std::vector<std::string>& names) {
  for (const std::string& name : names) units_in_flight_.erase(name);
}

void Engine::DrainUnitWritesLocked() {
  writes_held_ = true;
  auto landed = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return units_in_flight_.empty(); };
  mu_.Await(absl::Condition(&landed));
  writes_held_ = false;  // writers held back go on once the caller releases mu_
}

// ---------------------------------------------------------------------------
// Units

// The machine a unit is scheduled to; a global unit's machines are all marked
// by NoteGlobalsChangeLocked.
void Engine::MarkUnitMachinesDirtyLocked(absl::string_view name) {
  auto placed = snapshot_.schedule.find(name);
  if (placed != snapshot_.schedule.end()) MarkDirtyLocked(placed->second, placed->first);
}

void Engine::MarkDirtyLocked(absl::string_view machine, const SharedName& unit) {
  names_.Entry(dirty_machines_, machine).insert(unit);
}

bool Engine::InScheduleLocked(absl::string_view name) const {
  return snapshot_.units.contains(name) || snapshot_.schedule.contains(name);
}

void Engine::SetScheduleLocked(const SharedName& unit, absl::string_view machine) {
  auto current = snapshot_.schedule.find(unit);
  if (current != snapshot_.schedule.end()) {
    if (current->second == machine) return;
    MarkDirtyLocked(current->second, current->first);
    auto on = scheduled_on_.find(current->second);
    on->second.erase(unit);
    if (on->second.empty()) scheduled_on_.erase(on);
  }
  if (machine.empty()) {
    if (current != snapshot_.schedule.end()) snapshot_.schedule.erase(current);
    return;
  }
  const SharedName machine_id = names_.Share(machine);
  snapshot_.schedule.insert_or_assign(unit, machine_id);
  scheduled_on_[machine_id].insert(unit);
  MarkDirtyLocked(machine_id, unit);
}

void Engine::NoteGlobalsChangeLocked(bool was_global, bool is_global) {
  if (!was_global && !is_global) return;
  globals_.reset();
  all_machines_dirty_ = true;
}

const GlobalSet& Engine::GlobalsLocked() {
  if (!globals_.has_value()) globals_.emplace(snapshot_);
  return *globals_;
}

void Engine::PutUnitLocked(const std::string& name, UnitRecord record) {
  const bool ran = InScheduleLocked(name);
  MarkUnitMachinesDirtyLocked(name);  // where the old version runs
  auto stored = units_.find(name);
  const SharedName shared_name = stored != units_.end() ? stored->first : names_.Share(name);
  std::optional<UnitView> view;
  if (record.schedulable && !record.is_template && Runs(record.desired_state)) {
    view = UnitView{.name = shared_name, .options = record.options, .create_revision = record.create_revision};
  }
  // The scheduler sees a unit's view only. A change it cannot see (a start or
  // stop between loaded and launched, a file edited outside [X-Fleet]) needs
  // no pass: at 100,000 units a pass costs 0.1-0.4 s under the lock. A unit
  // that runs nowhere before and after (submitted, or changed while inactive)
  // needs none either. The agents still hear of it (marked dirty here).
  auto before = snapshot_.units.find(name);
  const bool was_global = before != snapshot_.units.end() && before->second.options->global;
  const bool view_kept = view.has_value() && before != snapshot_.units.end() &&
                         *before->second.options == *view->options &&
                         before->second.create_revision == view->create_revision;
  if (view_kept && was_global) {
    // Its entry (hash, desired state) changes wherever it runs; where that
    // is, the kept GlobalSet still knows.
    for (const auto& [id, machine] : machines_) MarkDirtyLocked(id, shared_name);
  } else if (!view_kept) {
    NoteGlobalsChangeLocked(was_global, view.has_value() && view->options->global);
    if (view.has_value()) {
      snapshot_.units.insert_or_assign(shared_name, *std::move(view));
    } else {
      snapshot_.units.erase(name);
    }
    snapshot_.units_version.Bump();
  }
  if (stored != units_.end()) {
    stored->second = std::move(record);
  } else {
    auto added = units_.try_emplace(shared_name, std::move(record)).first;
    unit_names_.insert(added->first.view());
  }
  MarkUnitMachinesDirtyLocked(name);  // where the new version runs
  if (!view_kept && (ran || InScheduleLocked(name))) reconcile_pending_ = true;
}

void Engine::EraseUnitLocked(const std::string& name) {
  if (InScheduleLocked(name)) reconcile_pending_ = true;
  MarkUnitMachinesDirtyLocked(name);
  unit_names_.erase(name);  // before its key, which it views, is freed
  units_.erase(name);
  if (auto view = snapshot_.units.find(name); view != snapshot_.units.end()) {
    NoteGlobalsChangeLocked(view->second.options->global, false);
    snapshot_.units.erase(view);
    snapshot_.units_version.Bump();
  }
  SetScheduleLocked(name, "");
  unplaceable_.erase(name);
}

absl::StatusOr<v1::CreateUnitResponse> Engine::CreateUnit(const v1::CreateUnitRequest& request) {
  v1::CreateUnitsRequest one;
  *one.add_units() = request;
  absl::StatusOr<v1::CreateUnitsResponse> result = CreateUnits(one);
  if (!result.ok()) return result.status();
  return std::move(*result->mutable_units(0));
}

absl::StatusOr<v1::CreateUnitsResponse> Engine::CreateUnits(const v1::CreateUnitsRequest& request) {
  const int count = request.units_size();
  if (count == 0) return absl::InvalidArgumentError("no unit given");
  if (count > kMaxUnitsPerRequest) {
    return absl::InvalidArgumentError(absl::StrCat(count, " units in one request; at most ",
                                                   kMaxUnitsPerRequest, " (split the list)"));
  }
  // Everything that needs no lock first: names, files, states.
  std::vector<std::string> names;
  std::vector<ParsedUnit> parsed;
  names.reserve(count);
  parsed.reserve(count);
  absl::flat_hash_set<std::string> seen;
  for (const v1::CreateUnitRequest& unit : request.units()) {
    const std::string& name = unit.name();
    if (absl::Status s = CheckKnownState(name, unit.desired_state()); !s.ok()) return s;
    if (!seen.insert(name).second) {
      return absl::InvalidArgumentError(absl::StrCat("unit ", ShowName(name), " is given twice"));
    }
    absl::StatusOr<ParsedUnit> file = ParseUnit(name, unit.contents());
    if (!file.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("unit ", ShowName(name), ": ", file.status().message()));
    }
    if (file->name.IsTemplate() && Runs(unit.desired_state())) {
      return absl::FailedPreconditionError(
          absl::StrCat("unit ", ShowName(name), " is a template: it cannot be ", StateName(unit.desired_state()),
                       "; submit or start an instance of it instead"));
    }
    names.push_back(name);
    parsed.push_back(*std::move(file));
  }

  absl::MutexLock lock(&mu_);
  BeginUnitWritesLocked(names);
  absl::Cleanup end_writes = [this, &names]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    EndUnitWritesLocked(names);
  };
  v1::CreateUnitsResponse response;
  std::vector<int> writing;  // indexes of the units that change
  std::vector<UnitRecord> written;
  Transaction txn;
  for (int i = 0; i < count; ++i) {
    const v1::CreateUnitRequest& asked = request.units(i);
    const DesiredState wanted = asked.desired_state();
    v1::CreateUnitResponse* answer = response.add_units();
    auto it = units_.find(names[i]);
    const UnitRecord* existing = it == units_.end() ? nullptr : &it->second;
    UnitRecord unit;
    if (existing != nullptr && existing->file->hash == parsed[i].hash) {
      answer->set_created(false);
      if (wanted == v1::DESIRED_STATE_UNSPECIFIED || wanted == existing->desired_state) {
        *answer->mutable_unit() = UnitMessage(names[i], *existing, !request.omit_contents());
        continue;  // same file, same state: nothing to do
      }
      unit.file = existing->file;
      unit.desired_state = wanted;
    } else {
      if (existing != nullptr && !asked.replace()) {
        return absl::AlreadyExistsError(absl::StrCat(
            "unit ", ShowName(names[i]), " already exists with other contents (stored hash ",
            existing->file->hash, ", submitted hash ", parsed[i].hash,
            "); destroy it first or ask to replace it"));
      }
      unit.file = files_.Share({.contents = asked.contents(), .hash = parsed[i].hash});
      unit.desired_state = wanted;
      if (wanted == v1::DESIRED_STATE_UNSPECIFIED) {
        unit.desired_state = existing != nullptr ? existing->desired_state : v1::DESIRED_STATE_INACTIVE;
      }
      answer->set_created(existing == nullptr);
      answer->set_replaced(existing != nullptr);
    }
    Compare unchanged;
    unchanged.key = kUnitsPrefix + names[i];
    unchanged.target = Compare::Target::kModRevision;
    unchanged.result = Compare::Result::kEqual;
    unchanged.number = existing != nullptr ? existing->mod_revision : 0;
    txn.compares.push_back(std::move(unchanged));
    Operation put;
    put.kind = Operation::Kind::kPut;
    put.key = kUnitsPrefix + names[i];
    put.value = StoredValue(names[i], unit, unit.desired_state);
    txn.on_success.push_back(std::move(put));
    // Read before the commit releases mu_; the record is not touched after it.
    unit.create_revision = existing != nullptr ? existing->create_revision : 0;
    writing.push_back(i);
    written.push_back(std::move(unit));
  }
  if (writing.empty()) return response;
  absl::StatusOr<TxnResult> result = CommitUnitLocked(std::move(txn));
  if (!result.ok()) return result.status();
  if (!result->succeeded) {
    return absl::AbortedError(absl::StrCat(
        writing.size() == 1 ? absl::StrCat("unit ", ShowName(names[writing[0]]))
                            : absl::StrCat("one of the ", writing.size(), " units"),
        " changed in the store meanwhile; nothing was created; retry"));
  }
  // The write slots kept every other writer of these units away, and a
  // reload waits for them: the records are as they were before the commit.
  for (size_t w = 0; w < writing.size(); ++w) {
    const int i = writing[w];
    UnitRecord& record = written[w];
    if (record.create_revision == 0) record.create_revision = result->revision;
    record.mod_revision = result->revision;
    record.options = options_pool_.Share(std::move(parsed[i].options));
    record.is_template = parsed[i].name.IsTemplate();
    *response.mutable_units(i)->mutable_unit() = UnitMessage(names[i], record, !request.omit_contents());
    PutUnitLocked(names[i], std::move(record));
  }
  return response;
}

absl::StatusOr<v1::Unit> Engine::GetUnit(const std::string& name) {
  if (name.empty()) return absl::InvalidArgumentError("unit name is empty");
  absl::MutexLock lock(&mu_);
  auto it = units_.find(name);
  if (it == units_.end()) return absl::NotFoundError(absl::StrCat("unit ", ShowName(name), " not found"));
  return UnitMessage(name, it->second);
}

absl::StatusOr<v1::ListUnitsResponse> Engine::ListUnits(const v1::ListUnitsRequest& request) {
  absl::StatusOr<int> page_size = PageSize(request.page_size());
  if (!page_size.ok()) return page_size.status();
  absl::MutexLock lock(&mu_);
  v1::ListUnitsResponse response;
  auto it = request.page_token().empty() ? unit_names_.begin()
                                          : unit_names_.upper_bound(request.page_token());
  for (; it != unit_names_.end(); ++it) {
    const auto& [name, record] = *units_.find(*it);
    if (!GlobMatches(request.name_glob(), name)) continue;
    if (response.units_size() == *page_size) {
      response.set_next_page_token(response.units(response.units_size() - 1).name());
      break;
    }
    *response.add_units() = UnitMessage(name.view(), record, !request.omit_contents());
  }
  return response;
}

absl::StatusOr<v1::Unit> Engine::SetUnitDesiredState(const v1::SetUnitDesiredStateRequest& request) {
  v1::SetUnitsDesiredStateRequest one;
  one.add_names(request.name());
  one.set_desired_state(request.desired_state());
  absl::StatusOr<v1::SetUnitsDesiredStateResponse> result = SetUnitsDesiredState(one);
  if (!result.ok()) return result.status();
  return std::move(*result->mutable_units(0));
}

absl::StatusOr<v1::SetUnitsDesiredStateResponse> Engine::SetUnitsDesiredState(
    const v1::SetUnitsDesiredStateRequest& request) {
  const std::vector<std::string> names(request.names().begin(), request.names().end());
  if (names.empty()) return absl::InvalidArgumentError("no unit named");
  if (names.size() > static_cast<size_t>(kMaxUnitsPerRequest)) {
    return absl::InvalidArgumentError(absl::StrCat(names.size(), " units in one request; at most ",
                                                   kMaxUnitsPerRequest, " (split the list)"));
  }
  const v1::DesiredState wanted = request.desired_state();
  absl::flat_hash_set<std::string> seen;
  for (const std::string& name : names) {
    if (name.empty()) return absl::InvalidArgumentError("unit name is empty");
    if (!seen.insert(name).second) {
      return absl::InvalidArgumentError(absl::StrCat("unit ", ShowName(name), " is named twice"));
    }
    if (absl::Status s = CheckKnownState(name, wanted); !s.ok()) return s;
    if (wanted == v1::DESIRED_STATE_UNSPECIFIED) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unit ", ShowName(name), ": no desired state given (use inactive, loaded or launched)"));
    }
  }
  absl::MutexLock lock(&mu_);
  BeginUnitWritesLocked(names);
  absl::Cleanup end_writes = [this, &names]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    EndUnitWritesLocked(names);
  };
  // Every name is checked before anything is written: all change, or none.
  Transaction txn;
  std::vector<std::string> changing;
  for (const std::string& name : names) {
    auto it = units_.find(name);
    if (it == units_.end()) return absl::NotFoundError(absl::StrCat("unit ", ShowName(name), " not found"));
    const UnitRecord& unit = it->second;
    if (unit.is_template && Runs(wanted)) {
      return absl::FailedPreconditionError(
          absl::StrCat("unit ", ShowName(name), " is a template: it cannot be ", StateName(wanted),
                       "; start an instance of it instead"));
    }
    if (unit.desired_state == wanted) continue;
    Compare unchanged;
    unchanged.key = kUnitsPrefix + name;
    unchanged.target = Compare::Target::kModRevision;
    unchanged.result = Compare::Result::kEqual;
    unchanged.number = unit.mod_revision;
    txn.compares.push_back(std::move(unchanged));
    Operation put;
    put.kind = Operation::Kind::kPut;
    put.key = kUnitsPrefix + name;
    put.value = StoredValue(name, unit, wanted);
    txn.on_success.push_back(std::move(put));
    changing.push_back(name);
  }
  if (!changing.empty()) {
    absl::StatusOr<TxnResult> result = CommitUnitLocked(std::move(txn));
    if (!result.ok()) return result.status();
    if (!result->succeeded) {
      return absl::AbortedError(absl::StrCat(
          changing.size() == 1 ? absl::StrCat("unit ", ShowName(changing[0]))
                               : absl::StrCat("one of the ", changing.size(), " units"),
          " changed in the store meanwhile; nothing was changed; retry"));
    }
    // The write slots kept every other writer of these units away, and a
    // reload waits for them: the records are as they were before the commit.
    for (const std::string& name : changing) {
      UnitRecord record = units_.at(name);
      record.desired_state = wanted;
      record.mod_revision = result->revision;
      PutUnitLocked(name, std::move(record));
    }
  }
  v1::SetUnitsDesiredStateResponse response;
  for (const std::string& name : names) {
    *response.add_units() = UnitMessage(name, units_.at(name), !request.omit_contents());
  }
  return response;
}

absl::Status Engine::DestroyUnit(const std::string& name) {
  if (name.empty()) return absl::InvalidArgumentError("unit name is empty");
  absl::MutexLock lock(&mu_);
  const std::vector<std::string> slot = {name};
  BeginUnitWritesLocked(slot);
  absl::Cleanup end_write = [this, &slot]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { EndUnitWritesLocked(slot); };
  auto it = units_.find(name);
  if (it == units_.end()) return absl::NotFoundError(absl::StrCat("unit ", ShowName(name), " not found"));
  Transaction txn;
  Compare unchanged;
  unchanged.key = kUnitsPrefix + name;
  unchanged.target = Compare::Target::kModRevision;
  unchanged.result = Compare::Result::kEqual;
  unchanged.number = it->second.mod_revision;
  txn.compares.push_back(unchanged);
  Operation del_unit;
  del_unit.kind = Operation::Kind::kDelete;
  del_unit.key = kUnitsPrefix + name;
  Operation del_schedule;
  del_schedule.kind = Operation::Kind::kDelete;
  del_schedule.key = kSchedulePrefix + name;
  txn.on_success = {del_unit, del_schedule};
  absl::StatusOr<TxnResult> result = CommitUnitLocked(std::move(txn));
  if (!result.ok()) return result.status();
  if (!result->succeeded) {
    return absl::AbortedError(absl::StrCat("unit ", ShowName(name), " changed in the store meanwhile; retry"));
  }
  EraseUnitLocked(name);
  return absl::OkStatus();
}

absl::string_view Engine::UnscheduledReasonLocked(absl::string_view name, const UnitRecord& record) const {
  if (!record.schedulable) return "its stored file no longer parses; submit it again";
  // A reason is served only while it is current: after a change the last
  // plan's reasons may be stale (a MachineOf= peer loaded since), and a
  // client that waits would end on them.
  auto reason = unplaceable_.find(name);
  if (reason == unplaceable_.end() || reconcile_pending_) return "";
  return reason->second;
}

UnitStatusFields Engine::StatusLocked(absl::string_view name, const UnitRecord& record,
                                      absl::string_view machine_id) const {
  UnitStatusFields status{.name = name,
                          .desired_state = record.desired_state,
                          .hash = record.file->hash,
                          .machine_id = machine_id};
  if (machine_id.empty()) {
    status.unscheduled_reason = UnscheduledReasonLocked(name, record);
    return status;
  }
  auto machine = machines_.find(machine_id);
  if (machine == machines_.end()) return status;
  auto found = machine->second.states.find(name);
  if (found == machine->second.states.end()) return status;
  const ReportedState& reported = found->second;
  status.state = UnitStateFields{.name = name,
                                 .machine_id = machine_id,
                                 .load_state = reported.words->load_state,
                                 .active_state = reported.words->active_state,
                                 .sub_state = reported.words->sub_state,
                                 .main_pid = reported.main_pid,
                                 .since_unix_micros = reported.since_unix_micros,
                                 .exit_status = reported.exit_status};
  if (reported.unit_hash != nullptr) status.state->unit_hash = *reported.unit_hash;
  return status;
}

absl::StatusOr<std::string> Engine::ListUnitStates(const v1::ListUnitStatesRequest& request) {
  absl::StatusOr<int> page_size = PageSize(request.page_size());
  if (!page_size.ok()) return page_size.status();
  absl::MutexLock lock(&mu_);
  ApplyReportsLocked();
  // The machine filter: an exact id, else a unique prefix of a live machine's id.
  std::string machine_filter = request.machine_id();
  if (!machine_filter.empty() && !machines_.contains(machine_filter)) {
    std::vector<std::string> matches;
    for (auto m = machines_.lower_bound(machine_filter);
         m != machines_.end() && m->first.starts_with(machine_filter); ++m) {
      matches.push_back(m->first);
    }
    if (matches.size() > 1) {
      return absl::InvalidArgumentError(absl::StrCat("machine id prefix ", machine_filter,
                                                     " matches several machines: ",
                                                     absl::StrJoin(matches, ", ")));
    }
    if (matches.size() == 1) machine_filter = matches[0];
  }

  UnitStatusPageWriter page;
  const std::string not_placed;
  std::vector<absl::string_view> entry_machines;  // of one unit
  auto it = request.page_token().empty() ? unit_names_.begin()
                                          : unit_names_.upper_bound(request.page_token());
  absl::string_view last_name;
  for (; it != unit_names_.end(); ++it) {
    const auto& [name, record] = *units_.find(*it);
    if (!GlobMatches(request.name_glob(), name)) continue;
    entry_machines.clear();
    if (record.options->global && !record.is_template) {
      for (const auto& [id, machine] : machines_) {
        if (!SetHas(machine.units, name)) continue;
        if (!machine_filter.empty() && id != machine_filter) continue;
        entry_machines.push_back(id);
      }
      if (entry_machines.empty() && machine_filter.empty()) entry_machines.push_back(not_placed);
    } else {
      auto placed = snapshot_.schedule.find(name);
      const absl::string_view machine_id = placed == snapshot_.schedule.end() ? not_placed : placed->second.view();
      if (!machine_filter.empty() && machine_id != machine_filter) continue;
      entry_machines.push_back(machine_id);
    }
    // Counted in entries, not units: pages of 1,000 units with a few globals
    // on 10,000 machines were larger than gRPC's 4 MiB message limit.
    if (!last_name.empty() && page.size() + entry_machines.size() > static_cast<size_t>(*page_size)) {
      return std::move(page).Finish(last_name);
    }
    for (absl::string_view machine_id : entry_machines) page.Add(StatusLocked(name, record, machine_id));
    last_name = name;
  }
  return std::move(page).Finish("");
}

v1::ListMachinesResponse Engine::ListMachines() {
  absl::MutexLock lock(&mu_);
  v1::ListMachinesResponse response;
  for (const auto& [id, record] : machines_) {
    v1::Machine* machine = response.add_machines();
    *machine = record.machine;
    machine->set_units(static_cast<uint32_t>(record.units.size()));
  }
  return response;
}

// ---------------------------------------------------------------------------
// Agents

std::string Engine::MachineOfSession(int64_t session) {
  absl::MutexLock beat(&beat_mu_);
  auto it = sessions_.find(session);
  return it == sessions_.end() ? "" : it->second;
}

absl::StatusOr<int64_t> Engine::AgentRegistered(const v1::Register& reg, AgentChannel* channel) {
  const std::string& id = reg.machine().id();
  if (absl::Status s = CheckMachineId(id); !s.ok()) return s;
  for (const auto& [key, value] : reg.machine().metadata()) {
    if (key.empty()) return absl::InvalidArgumentError(absl::StrCat("machine ", id, ": empty metadata key"));
  }
  absl::MutexLock lock(&mu_);
  if (shutting_down_) return absl::UnavailableError("the engine is shutting down");
  if (!leading_) return absl::UnavailableError("this engine is not the leader");
  ApplyReportsLocked();  // an older stream's, before this one's full state
  const absl::Time now = clock_->Now();
  auto existing = machines_.find(id);
  if (existing != machines_.end() && existing->second.session != 0) {
    if (absl::MutexLock beat(&beat_mu_); liveness_.IsAlive(id, now)) {
      return absl::AlreadyExistsError(absl::StrCat(
          "machine ", id, " already has a connected agent; a second stream for the same machine id is "
          "refused (stop the other agent or give this one another machine id)"));
    }
    // The old stream went silent past agent_ttl: the new one replaces it.
    existing->second.channel->Close(
        absl::UnavailableError(absl::StrCat("replaced by a newer stream of machine ", id)));
    absl::MutexLock beat(&beat_mu_);
    sessions_.erase(existing->second.session);
    existing->second.session = 0;
    existing->second.channel = nullptr;
  }

  v1::Machine machine = reg.machine();
  machine.set_units(0);
  machine.set_since_unix_micros(absl::ToUnixMicros(now));
  // The record is written by the next Tick, with the others that arrived
  // meanwhile: a registration waits for no store write. It blocked one of
  // gRPC's few callback threads for an fsync; when 10,000 agents connected,
  // those threads were all waiting on the store while heartbeats queued past
  // agent_ttl, and live machines were declared dead and came back again.
  machines_to_record_[id] = machine.SerializeAsString();

  MachineView view;
  view.id = id;
  view.metadata.insert(machine.metadata().begin(), machine.metadata().end());
  view.capacity = machine.capacity();
  auto old_view = snapshot_.machines.find(id);
  if (old_view == snapshot_.machines.end() || old_view->second.metadata != view.metadata ||
      old_view->second.capacity != view.capacity) {
    reconcile_pending_ = true;  // new machine, or one that now fits other units
  }
  snapshot_.machines[id] = std::move(view);

  MachineRecord& record = machines_[id];
  record.machine = std::move(machine);
  record.session = next_session_++;
  record.channel = channel;
  record.states.clear();
  for (const v1::UnitState& state : reg.units()) KeepReportedStateLocked(record, state);
  {
    absl::MutexLock beat(&beat_mu_);
    liveness_.Touch(id, now);
    sessions_[record.session] = id;
  }

  record.units = ComputeSetLocked(id);
  v1::EngineMessage message;
  message.set_heartbeat_interval_ms(absl::ToInt64Milliseconds(heartbeat_interval_));
  v1::ScheduleFull* full = message.mutable_full();
  for (const SetEntry& entry : record.units) *full->add_units() = ScheduledUnitLocked(entry);
  channel->Send(std::move(message));
  return record.session;
}

absl::Status Engine::AgentHeartbeat(int64_t session) {
  absl::MutexLock beat(&beat_mu_);
  auto it = sessions_.find(session);
  if (it == sessions_.end()) {
    return absl::FailedPreconditionError("this agent stream is no longer registered");
  }
  liveness_.Touch(it->second, clock_->Now());
  return absl::OkStatus();
}

absl::Status Engine::AgentReport(int64_t session, v1::StateReport report) {
  // A report is news from the machine too, whatever it waits for next.
  if (absl::Status alive = AgentHeartbeat(session); !alive.ok()) return alive;
  {
    absl::MutexLock queue(&reports_mu_);
    queued_reports_.push_back({session, std::move(report)});
  }
  if (mu_.TryLock()) {
    ApplyReportsLocked();
    mu_.Unlock();
  }
  return absl::OkStatus();
}

void Engine::ApplyReportsLocked() {
  std::vector<QueuedReport> reports;
  {
    absl::MutexLock queue(&reports_mu_);
    reports.swap(queued_reports_);
  }
  for (const QueuedReport& queued : reports) {
    auto machine = machines_.find(MachineOfSession(queued.session));
    if (machine == machines_.end()) continue;
    MachineRecord& record = machine->second;
    for (const v1::UnitState& state : queued.report.states()) KeepReportedStateLocked(record, state);
    for (const std::string& name : queued.report.removed()) record.states.erase(name);
  }
}

void Engine::KeepReportedStateLocked(MachineRecord& record, const v1::UnitState& state) {
  ReportedState& kept = names_.Entry(record.states, state.name());
  kept.words = state_words_.Share({.load_state = state.load_state(),
                                   .active_state = state.active_state(),
                                   .sub_state = state.sub_state()});
  kept.main_pid = state.main_pid();
  kept.exit_status = state.exit_status();
  kept.since_unix_micros = state.since_unix_micros();
  kept.unit_hash.reset();
  if (state.unit_hash().empty()) return;
  if (auto unit = units_.find(state.name()); unit != units_.end() && unit->second.file->hash == state.unit_hash()) {
    const std::shared_ptr<const UnitFileText>& file = unit->second.file;
    kept.unit_hash = std::shared_ptr<const std::string>(file, &file->hash);  // shares the file's
  } else {
    kept.unit_hash = std::make_shared<const std::string>(state.unit_hash());
  }
}

void Engine::AgentDisconnected(int64_t session) {
  absl::MutexLock lock(&mu_);
  ApplyReportsLocked();  // what the stream reported before it ended
  absl::MutexLock beat(&beat_mu_);
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return;
  auto machine = machines_.find(it->second);
  if (machine != machines_.end() && machine->second.session == session) {
    machine->second.session = 0;
    machine->second.channel = nullptr;
  }
  sessions_.erase(it);
}

// ---------------------------------------------------------------------------
// Requests relayed to agents

absl::StatusOr<AgentRoute> Engine::SendToUnitAgent(const std::string& name, const std::string& machine,
                                                   v1::EngineMessage message,
                                                   const std::function<void(const AgentRoute&)>& on_route) {
  if (name.empty()) return absl::InvalidArgumentError("unit name is empty");
  absl::MutexLock lock(&mu_);
  ApplyReportsLocked();  // the route carries the unit's reported state
  auto unit = units_.find(name);
  if (unit == units_.end()) return absl::NotFoundError(absl::StrCat("unit ", ShowName(name), " not found"));
  const UnitRecord& record = unit->second;
  // The machines that run it.
  std::vector<std::string> runs_on;
  if (record.options->global && !record.is_template) {
    for (const auto& [id, m] : machines_) {
      if (SetHas(m.units, name)) runs_on.push_back(id);
    }
  } else if (auto placed = snapshot_.schedule.find(name); placed != snapshot_.schedule.end()) {
    runs_on.push_back(placed->second.str());
  }
  if (runs_on.empty()) {
    std::string why(UnscheduledReasonLocked(name, record));
    if (why.empty() && !Runs(record.desired_state)) {
      why = absl::StrCat("its desired state is ", StateName(record.desired_state));
    }
    return absl::FailedPreconditionError(absl::StrCat("unit ", ShowName(name), " is not scheduled on any machine",
                                                      why.empty() ? "" : ": ", why));
  }
  std::string chosen;
  if (machine.empty()) {
    if (runs_on.size() > 1) {
      return absl::FailedPreconditionError(absl::StrCat("unit ", ShowName(name), " is global and runs on ", runs_on.size(),
                                                        " machines; name one (", absl::StrJoin(runs_on, ", "), ")"));
    }
    chosen = runs_on[0];
  } else {
    std::vector<std::string> matches;
    for (const std::string& id : runs_on) {
      if (id == machine) {
        matches = {id};
        break;
      }
      if (id.starts_with(machine)) matches.push_back(id);
    }
    if (matches.size() > 1) {
      return absl::InvalidArgumentError(absl::StrCat("machine id prefix ", ShowName(machine), " matches several machines: ",
                                                     absl::StrJoin(matches, ", ")));
    }
    if (matches.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("unit ", ShowName(name), " is not scheduled on machine ", ShowName(machine), " (it runs on ",
                       absl::StrJoin(runs_on, ", "), ")"));
    }
    chosen = matches[0];
  }
  auto target = machines_.find(chosen);
  if (target == machines_.end() || target->second.channel == nullptr) {
    return absl::UnavailableError(absl::StrCat("the agent of machine ", chosen, " (which runs unit ", name,
                                               ") is not connected"));
  }
  AgentRoute route;
  route.machine_id = chosen;
  route.session = target->second.session;
  FillUnitStatus(StatusLocked(name, record, chosen), &route.status);
  on_route(route);
  target->second.channel->Send(std::move(message));
  return route;
}

bool Engine::SendToSession(int64_t session, v1::EngineMessage message) {
  absl::MutexLock lock(&mu_);
  std::string id = MachineOfSession(session);
  if (id.empty()) return false;
  auto machine = machines_.find(id);
  if (machine == machines_.end() || machine->second.channel == nullptr || machine->second.session != session) {
    return false;
  }
  machine->second.channel->Send(std::move(message));
  return true;
}

// ---------------------------------------------------------------------------
// The loop

void Engine::DeclareDeadLocked(const std::string& machine_id) {
  machines_to_record_.erase(machine_id);
  auto it = machines_.find(machine_id);
  if (it != machines_.end()) {
    if (it->second.channel != nullptr) {
      absl::MutexLock beat(&beat_mu_);
      it->second.channel->Close(absl::UnavailableError(absl::StrCat(
          "machine ", machine_id, " sent no heartbeat for ", absl::FormatDuration(agent_ttl_),
          " and was declared dead; reconnect to get a fresh schedule")));
      sessions_.erase(it->second.session);
    }
    machines_.erase(it);
  }
  snapshot_.machines.erase(machine_id);
  dirty_machines_.erase(machine_id);
  reconcile_pending_ = true;
}

absl::Status Engine::ReconcileLocked() {
  // The plan is made from unit records that are all in memory (a unit
  // destroyed in flight must not get a schedule key after its delete).
  DrainUnitWritesLocked();
  Plan plan = reconciler_.Reconcile(snapshot_);
  // One write per entry of the plan: each changes the stored schedule, and
  // no unit is in both lists (Plan; mu_ is held since the plan was made).
  struct Change {
    SharedName unit;
    SharedName machine;  // empty = unassign
  };
  std::vector<Change> changes;
  changes.reserve(plan.unassign.size() + plan.assign.size());
  for (SharedName& unit : plan.unassign) changes.push_back({std::move(unit), SharedName()});
  for (auto& [unit, machine] : plan.assign) changes.push_back({std::move(unit), std::move(machine)});

  // The plan's units stay untouched while their schedule is written with mu_
  // released; writes of other units go on and make the next pass. Readers
  // meanwhile see this plan's reasons (a unit about to be placed has none).
  reconcile_pending_ = false;
  unplaceable_ = std::move(plan.unplaceable);
  for (const Change& change : changes) units_in_flight_.insert(change.unit);
  absl::Cleanup end_writes = [this, &changes]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (const Change& change : changes) units_in_flight_.erase(change.unit);
  };
  for (size_t begin = 0; begin < changes.size(); begin += max_ops_per_txn_) {
    size_t end = std::min(changes.size(), begin + max_ops_per_txn_);
    Transaction txn;
    for (size_t i = begin; i < end; ++i) {
      Operation op;
      op.key = absl::StrCat(kSchedulePrefix, changes[i].unit.view());
      if (changes[i].machine.empty()) {
        op.kind = Operation::Kind::kDelete;
      } else {
        op.kind = Operation::Kind::kPut;
        v1::ScheduleRecord record;
        record.set_machine_id(changes[i].machine.str());
        op.value = record.SerializeAsString();
      }
      txn.on_success.push_back(std::move(op));
    }
    absl::StatusOr<TxnResult> result = CommitUnitLocked(std::move(txn));
    if (!result.ok()) {
      reconcile_pending_ = true;
      return absl::Status(result.status().code(),
                          absl::StrCat("writing the schedule: ", result.status().message()));
    }
    for (size_t i = begin; i < end; ++i) SetScheduleLocked(changes[i].unit, changes[i].machine);
  }
  return absl::OkStatus();
}

v1::Unit Engine::UnitMessage(absl::string_view name, const UnitRecord& record, bool with_contents) {
  v1::Unit unit;
  unit.set_name(std::string(name));
  if (with_contents) unit.set_contents(record.file->contents);
  unit.set_hash(record.file->hash);
  unit.set_desired_state(record.desired_state);
  unit.set_create_revision(record.create_revision);
  unit.set_mod_revision(record.mod_revision);
  return unit;
}

std::string Engine::StoredValue(const std::string& name, const UnitRecord& record,
                                v1::DesiredState desired_state) {
  v1::Unit unit = UnitMessage(name, record);
  unit.set_desired_state(desired_state);
  unit.clear_create_revision();
  unit.clear_mod_revision();
  return unit.SerializeAsString();
}

bool Engine::SetHas(const UnitSet& set, std::string_view name) {
  auto it = std::lower_bound(set.begin(), set.end(), name, kEntryBefore);
  return it != set.end() && it->name == name;
}

Engine::SetEntry Engine::EntryOf(const SharedName& name, const UnitRecord& record) {
  return SetEntry{.name = name, .mod_revision = record.mod_revision};
}

const NameSet& Engine::ScheduledOnLocked(const std::string& machine_id) const {
  static const NameSet kNone;
  auto here = scheduled_on_.find(machine_id);
  return here == scheduled_on_.end() ? kNone : here->second;
}

Engine::UnitSet Engine::ComputeSetLocked(const std::string& machine_id) {
  UnitSet set;
  for (const SharedName& name :
       UnitsForMachine(snapshot_, machine_id, ScheduledOnLocked(machine_id), GlobalsLocked())) {
    auto unit = units_.find(name);
    if (unit != units_.end()) set.push_back(EntryOf(name, unit->second));
  }
  return set;
}

v1::ScheduledUnit Engine::ScheduledUnitLocked(const SetEntry& entry) {
  const UnitRecord& record = units_.at(entry.name);  // entries are made from units_ under mu_
  v1::ScheduledUnit scheduled;
  scheduled.set_name(entry.name.str());
  scheduled.set_hash(record.file->hash);
  scheduled.set_desired_state(record.desired_state);
  scheduled.set_contents(record.file->contents);
  return scheduled;
}

void Engine::SendDeltaLocked(MachineRecord& record, v1::ScheduleDelta delta) {
  if (record.channel == nullptr || (delta.upserts_size() == 0 && delta.removes_size() == 0)) return;
  v1::EngineMessage message;
  message.set_heartbeat_interval_ms(absl::ToInt64Milliseconds(heartbeat_interval_));
  *message.mutable_delta() = std::move(delta);
  record.channel->Send(std::move(message));
}

void Engine::PushSetsLocked() {
  if (all_machines_dirty_) {
    for (auto& [id, record] : machines_) PushWholeSetLocked(id, record);
  } else {
    for (const auto& [id, changed] : dirty_machines_) {
      auto record = machines_.find(id.view());
      if (record != machines_.end()) PushChangedUnitsLocked(record->first, record->second, changed);
    }
  }
  all_machines_dirty_ = false;
  dirty_machines_.clear();
}

void Engine::PushWholeSetLocked(const std::string& machine_id, MachineRecord& record) {
  UnitSet set = ComputeSetLocked(machine_id);
  v1::ScheduleDelta delta;
  // Both sets are sorted by name: one pass finds what was added, changed and
  // removed.
  auto old = record.units.begin();
  for (const SetEntry& entry : set) {
    for (; old != record.units.end() && old->name < entry.name; ++old) delta.add_removes(old->name.str());
    const bool known = old != record.units.end() && old->name == entry.name;
    if (!known || !(*old == entry)) *delta.add_upserts() = ScheduledUnitLocked(entry);
    if (known) ++old;
  }
  for (; old != record.units.end(); ++old) delta.add_removes(old->name.str());
  record.units = std::move(set);
  SendDeltaLocked(record, std::move(delta));
}

void Engine::PushChangedUnitsLocked(const std::string& machine_id, MachineRecord& record,
                                    const NameSet& changed) {
  const NameSet& scheduled_here = ScheduledOnLocked(machine_id);
  std::vector<SharedName> names(changed.begin(), changed.end());
  std::sort(names.begin(), names.end());  // the same message whatever the hash order
  v1::ScheduleDelta delta;
  for (const SharedName& name : names) {
    auto at = std::lower_bound(record.units.begin(), record.units.end(), name, kEntryBefore);
    const bool listed = at != record.units.end() && at->name == name;
    auto unit = units_.find(name);
    if (unit != units_.end() &&
        RunsOnMachine(snapshot_, machine_id, scheduled_here, GlobalsLocked(), name)) {
      SetEntry entry = EntryOf(name, unit->second);
      if (listed && *at == entry) continue;
      *delta.add_upserts() = ScheduledUnitLocked(entry);
      if (listed) {
        *at = std::move(entry);
      } else {
        record.units.insert(at, std::move(entry));
      }
    } else if (listed) {
      delta.add_removes(name.str());
      record.units.erase(at);
    }
  }
  SendDeltaLocked(record, std::move(delta));
}

absl::Status Engine::RecordMachinesLocked() {
  while (!machines_to_record_.empty()) {
    Transaction record;
    for (auto it = machines_to_record_.begin();
         it != machines_to_record_.end() && record.on_success.size() < max_ops_per_txn_; ++it) {
      Operation put;
      put.key = kMachinesPrefix + it->first;
      put.value = it->second;
      record.on_success.push_back(std::move(put));
    }
    absl::StatusOr<TxnResult> put = CommitLocked(record);
    if (!put.ok()) {  // kept for the next Tick
      return absl::Status(put.status().code(),
                          absl::StrCat("recording ", machines_to_record_.size(),
                                       " registered machines: ", put.status().message()));
    }
    for (const Operation& op : record.on_success) {
      machines_to_record_.erase(op.key.substr(sizeof(kMachinesPrefix) - 1));
    }
  }
  return absl::OkStatus();
}

absl::Status Engine::Tick() {
  absl::MutexLock lock(&mu_);
  if (shutting_down_) return absl::OkStatus();
  woken_ = false;
  const bool leads = leadership_ == nullptr || leadership_->IsLeader();
  if (leads && !leading_) {
    if (absl::Status s = ReloadLocked(); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("taking the lead: reading the cluster state: ",
                                                 s.message()));
    }
    leading_ = true;
  } else if (!leads && leading_) {
    CloseAgentStreamsLocked(absl::UnavailableError("this engine is no longer the leader"));
    leading_ = false;
  }
  if (!leading_) return absl::OkStatus();
  ApplyReportsLocked();  // those queued while mu_ was busy wait for the next pass at most
  absl::Status status;
  std::vector<std::string> dead;
  {
    absl::MutexLock beat(&beat_mu_);
    dead = liveness_.TakeExpired(clock_->Now());
  }
  for (const std::string& id : dead) DeclareDeadLocked(id);
  if (!dead.empty()) {
    constexpr size_t kNamed = 5;
    LogWarning("declared %d machine(s) dead, silent for %s: %s%s; their units move", dead.size(),
               absl::FormatDuration(agent_ttl_),
               absl::StrJoin(dead.begin(), dead.begin() + std::min(dead.size(), kNamed), ", "),
               dead.size() > kNamed ? ", ..." : "");
  }
  // Their records go in as few writes as the store allows (500 machines lost
  // at once were 500 fsyncs under the lock). A record left behind only makes
  // the machine presumed alive for one agent_ttl after a restart.
  for (size_t begin = 0; begin < dead.size(); begin += max_ops_per_txn_) {
    const size_t end = std::min(dead.size(), begin + max_ops_per_txn_);
    Transaction forget;
    for (size_t i = begin; i < end; ++i) {
      Operation del;
      del.kind = Operation::Kind::kDelete;
      del.key = kMachinesPrefix + dead[i];
      forget.on_success.push_back(std::move(del));
    }
    absl::StatusOr<TxnResult> deleted = CommitLocked(std::move(forget));
    if (!deleted.ok() && status.ok()) {
      status = absl::Status(deleted.status().code(),
                            absl::StrCat("deleting the records of ", end - begin, " dead machines (",
                                         dead[begin], "...): ", deleted.status().message()));
    }
  }
  if (absl::Status recorded = RecordMachinesLocked(); !recorded.ok() && status.ok()) {
    status = recorded;
  }
  if (reconcile_pending_) {
    absl::Status reconciled = ReconcileLocked();
    if (status.ok()) status = reconciled;
  }
  PushSetsLocked();
  return status;
}

void Engine::WaitForWork(absl::Duration timeout) {
  auto has_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    // A follower's pending work waits until it leads (and reloads).
    return shutting_down_ || woken_ || (leading_ && TickHasWorkLocked());
  };
  absl::MutexLock lock(&mu_);
  if (leading_) timeout = std::min(UntilNextExpiry(), timeout);
  mu_.AwaitWithTimeout(absl::Condition(&has_work), timeout);
}

absl::Duration Engine::UntilNextExpiry() {
  absl::MutexLock beat(&beat_mu_);
  // A millisecond past the expiry: TakeExpired then surely counts it.
  return std::max(liveness_.NextExpiry() - clock_->Now() + absl::Milliseconds(1), absl::ZeroDuration());
}

void Engine::Wake() {
  absl::MutexLock lock(&mu_);
  woken_ = true;
}

bool Engine::leading() {
  absl::MutexLock lock(&mu_);
  return leading_;
}

bool Engine::TickHasWorkLocked() const {
  return reconcile_pending_ || all_machines_dirty_ || !dirty_machines_.empty() ||
         !machines_to_record_.empty();
}

bool Engine::ReconcilePending() {
  absl::MutexLock lock(&mu_);
  return TickHasWorkLocked();
}

void Engine::Shutdown() {
  absl::MutexLock lock(&mu_);
  shutting_down_ = true;
  CloseAgentStreamsLocked(absl::UnavailableError("the engine is shutting down"));
}

}  // namespace fleet
