#include "agent/systemd/sd_bus_manager.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/functional/function_ref.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/systemd/unit_name.h"

namespace fleet::agent {
namespace {

// The one place that knows systemd's bus names and object paths.
constexpr char kDestination[] = "org.freedesktop.systemd1";
constexpr char kManagerPath[] = "/org/freedesktop/systemd1";
constexpr char kManagerInterface[] = "org.freedesktop.systemd1.Manager";
constexpr char kUnitPathPrefix[] = "/org/freedesktop/systemd1/unit";
constexpr char kUnitInterface[] = "org.freedesktop.systemd1.Unit";
constexpr char kServiceInterface[] = "org.freedesktop.systemd1.Service";
constexpr char kPropertiesInterface[] = "org.freedesktop.DBus.Properties";

struct MessageUnref {
  void operator()(sd_bus_message* m) const { sd_bus_message_unref(m); }
};
using MessagePtr = std::unique_ptr<sd_bus_message, MessageUnref>;

// An sd_bus_error that frees itself.
class BusError {
 public:
  BusError() = default;
  ~BusError() { sd_bus_error_free(&error_); }
  BusError(const BusError&) = delete;
  BusError& operator=(const BusError&) = delete;
  sd_bus_error* get() { return &error_; }

 private:
  sd_bus_error error_ = SD_BUS_ERROR_NULL;
};

// Maps a failed sd-bus call (negative errno, D-Bus error) to a status callers
// can act on: NotFound for an unknown unit, Unavailable for a broken bus.
absl::Status BusStatus(int r, const sd_bus_error* error, absl::string_view what) {
  std::string message =
      absl::StrCat(what, ": ", error != nullptr && error->message != nullptr ? error->message
                                                                             : std::strerror(-r));
  const char* name = error != nullptr ? error->name : nullptr;
  if (name != nullptr) {
    if (sd_bus_error_has_names(error, "org.freedesktop.systemd1.NoSuchUnit",
                               "org.freedesktop.systemd1.LoadFailed",
                               "org.freedesktop.DBus.Error.FileNotFound")) {
      return absl::NotFoundError(message);
    }
    if (sd_bus_error_has_names(error, "org.freedesktop.DBus.Error.AccessDenied",
                               "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired")) {
      return absl::PermissionDeniedError(message);
    }
    if (sd_bus_error_has_names(error, "org.freedesktop.DBus.Error.InvalidArgs")) {
      return absl::InvalidArgumentError(message);
    }
    if (sd_bus_error_has_names(error, "org.freedesktop.DBus.Error.NoReply",
                               "org.freedesktop.DBus.Error.Disconnected",
                               "org.freedesktop.DBus.Error.ServiceUnknown",
                               "org.freedesktop.DBus.Error.NameHasNoOwner",
                               "org.freedesktop.DBus.Error.Timeout")) {
      return absl::UnavailableError(message);
    }
    return absl::InternalError(absl::StrCat(message, " (", name, ")"));
  }
  if (r == -ENOTCONN || r == -ECONNRESET || r == -ETIMEDOUT || r == -EPIPE || r == -ENOENT ||
      r == -ECONNREFUSED) {
    return absl::UnavailableError(message);
  }
  return absl::InternalError(message);
}

std::string ErrnoText(int err) { return std::strerror(err); }

// Walks a dictionary a{sv} of unit or service properties: for each entry,
// `read(key)` reads its variant and returns > 0, or returns 0 to have it
// skipped. Returns a negative errno on a malformed message or from `read`.
int ForEachProperty(sd_bus_message* m, absl::FunctionRef<int(absl::string_view key)> read) {
  int r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, "{sv}");
  if (r < 0) return r;
  while ((r = sd_bus_message_enter_container(m, SD_BUS_TYPE_DICT_ENTRY, "sv")) > 0) {
    const char* key = nullptr;
    if ((r = sd_bus_message_read(m, "s", &key)) < 0) return r;
    if ((r = read(key)) < 0) return r;
    if (r == 0 && (r = sd_bus_message_skip(m, "v")) < 0) return r;
    if ((r = sd_bus_message_exit_container(m)) < 0) return r;
  }
  if (r < 0) return r;
  return sd_bus_message_exit_container(m);
}

// Reads the variant of property `k` into `s` when it is one the agent
// reports (> 0); 0 for any other property; a negative errno on error.
int ReadStatusProperty(sd_bus_message* m, absl::string_view k, UnitStatus* s) {
  int r = 0;
  const char* str = nullptr;
  if (k == "LoadState" || k == "ActiveState" || k == "SubState") {
    if ((r = sd_bus_message_read(m, "v", "s", &str)) < 0) return r;
    (k == "LoadState" ? s->load_state : k == "ActiveState" ? s->active_state : s->sub_state) = str;
  } else if (k == "MainPID") {
    if ((r = sd_bus_message_read(m, "v", "u", &s->main_pid)) < 0) return r;
  } else if (k == "ExecMainStatus") {
    if ((r = sd_bus_message_read(m, "v", "i", &s->exit_status)) < 0) return r;
  } else if (k == "StateChangeTimestamp") {
    uint64_t usec = 0;
    if ((r = sd_bus_message_read(m, "v", "t", &usec)) < 0) return r;
    s->since = usec == 0 ? absl::InfinitePast() : absl::FromUnixMicros(static_cast<int64_t>(usec));
  } else {
    return 0;
  }
  return 1;
}

// Reads the properties the agent reports into `s`; skips the others. Returns
// a negative errno on a malformed message.
int ReadProperties(sd_bus_message* m, UnitStatus* s) {
  return ForEachProperty(m, [m, s](absl::string_view k) { return ReadStatusProperty(m, k, s); });
}

bool IsService(absl::string_view name) { return absl::EndsWith(name, ".service"); }

}  // namespace

absl::StatusOr<std::string> DefaultUnitDir(BusKind kind) {
  switch (kind) {
    case BusKind::kSystem:
      return std::string("/run/fleet/units");
    case BusKind::kUser: {
      const char* runtime = std::getenv("XDG_RUNTIME_DIR");
      if (runtime == nullptr || runtime[0] == '\0') {
        return absl::FailedPreconditionError(
            "XDG_RUNTIME_DIR is not set: give --unit-dir for the user manager");
      }
      return absl::StrCat(runtime, "/fleet/units");
    }
  }
  return absl::InternalError("unknown bus kind");
}

absl::StatusOr<std::unique_ptr<SdBusManager>> SdBusManager::Create(BusKind kind,
                                                                   std::string unit_dir) {
  std::error_code ec;
  std::filesystem::create_directories(unit_dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create unit dir ", unit_dir, ": ", ec.message()));
  sd_bus* bus = nullptr;
  int r = kind == BusKind::kSystem ? sd_bus_open_system(&bus) : sd_bus_open_user(&bus);
  if (r < 0) {
    return absl::UnavailableError(absl::StrCat("cannot connect to the ",
                                               kind == BusKind::kSystem ? "system" : "user",
                                               " bus: ", ErrnoText(-r)));
  }
  int wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd < 0) {
    sd_bus_flush_close_unref(bus);
    return absl::InternalError(absl::StrCat("eventfd: ", ErrnoText(errno)));
  }
  std::unique_ptr<SdBusManager> manager(new SdBusManager(bus, std::move(unit_dir), wake_fd));
  if (absl::Status s = manager->Subscribe(); !s.ok()) return s;
  return manager;
}

SdBusManager::SdBusManager(sd_bus* bus, std::string unit_dir, int wake_fd)
    : bus_(bus), unit_dir_(std::move(unit_dir)), wake_fd_(wake_fd) {}

SdBusManager::~SdBusManager() {
  sd_bus_slot_unref(properties_slot_);
  sd_bus_slot_unref(jobs_slot_);
  sd_bus_flush_close_unref(bus_);
  close(wake_fd_);
}

absl::Status SdBusManager::Subscribe() {
  std::string props_match = absl::StrCat(
      "type='signal',sender='", kDestination, "',interface='", kPropertiesInterface,
      "',member='PropertiesChanged',path_namespace='", kUnitPathPrefix, "'");
  int r = sd_bus_add_match(bus_, &properties_slot_, props_match.c_str(), &OnPropertiesChanged, this);
  if (r < 0) return BusStatus(r, nullptr, "add PropertiesChanged match");
  r = sd_bus_match_signal(bus_, &jobs_slot_, kDestination, kManagerPath, kManagerInterface,
                          "JobRemoved", &OnJobRemoved, this);
  if (r < 0) return BusStatus(r, nullptr, "add JobRemoved match");
  BusError error;
  r = sd_bus_call_method(bus_, kDestination, kManagerPath, kManagerInterface, "Subscribe",
                         error.get(), nullptr, "");
  if (r < 0) return BusStatus(r, error.get(), "Subscribe");
  return absl::OkStatus();
}

int SdBusManager::OnPropertiesChanged(sd_bus_message* m, void* userdata, sd_bus_error*) {
  auto* self = static_cast<SdBusManager*>(userdata);
  char* raw = nullptr;
  if (sd_bus_path_decode(sd_bus_message_get_path(m), kUnitPathPrefix, &raw) <= 0) return 0;
  std::string name(raw);
  std::free(raw);
  auto it = self->tracked_.find(name);
  if (it == self->tracked_.end()) return 0;
  const char* interface = nullptr;
  if (sd_bus_message_read(m, "s", &interface) < 0) return 0;
  if (std::strcmp(interface, kUnitInterface) != 0 && std::strcmp(interface, kServiceInterface) != 0) {
    return 0;
  }
  UnitStatus updated = it->second;
  if (ReadProperties(m, &updated) < 0) {
    self->refetch_.insert(name);  // could not read the signal: ask systemd instead
    return 0;
  }
  if (updated != it->second) {
    it->second = std::move(updated);
    self->changed_.insert(name);
  }
  return 0;
}

int SdBusManager::OnJobRemoved(sd_bus_message* m, void* userdata, sd_bus_error*) {
  auto* self = static_cast<SdBusManager*>(userdata);
  uint32_t id = 0;
  const char* job = nullptr;
  const char* unit = nullptr;
  const char* result = nullptr;
  if (sd_bus_message_read(m, "uoss", &id, &job, &unit, &result) < 0) return 0;
  // A job that did not end "done" (failed, timeout, dependency, ...) settles
  // the unit in a state worth reading once from systemd; a "done" job's
  // outcome arrives with the PropertiesChanged signals.
  if (std::strcmp(result, "done") != 0 && self->tracked_.contains(unit)) {
    self->refetch_.insert(unit);
  }
  return 0;
}

absl::Status SdBusManager::ProcessPending() {
  while (true) {
    int r = sd_bus_process(bus_, nullptr);
    if (r < 0) return BusStatus(r, nullptr, "reading from systemd");
    if (r == 0) return absl::OkStatus();
  }
}

absl::Status SdBusManager::InstallUnit(absl::string_view name, absl::string_view contents) {
  if (absl::Status s = ValidateUnitName(name); !s.ok()) return s;
  std::string path = absl::StrCat(unit_dir_, "/", name);
  std::string tmp = absl::StrCat(unit_dir_, "/.", name, ".tmp");
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    out.close();
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", tmp));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    std::remove(tmp.c_str());
    return absl::InternalError(absl::StrCat("cannot rename ", tmp, " to ", path, ": ", ErrnoText(err)));
  }
  std::string unit(name);
  to_disable_.erase(unit);
  to_link_.insert(path);
  if (HasInstallSection(contents)) {
    to_enable_.insert(unit);
  } else {
    to_enable_.erase(unit);
  }
  return absl::OkStatus();
}

absl::Status SdBusManager::RemoveUnit(absl::string_view name) {
  if (absl::Status s = ValidateUnitName(name); !s.ok()) return s;
  std::string path = absl::StrCat(unit_dir_, "/", name);
  if (std::remove(path.c_str()) != 0 && errno != ENOENT) {
    return absl::InternalError(absl::StrCat("cannot remove ", path, ": ", ErrnoText(errno)));
  }
  std::string unit(name);
  to_link_.erase(path);
  to_enable_.erase(unit);
  to_disable_.insert(unit);
  return absl::OkStatus();
}

absl::Status SdBusManager::CallWithArray(const char* method, const std::set<std::string>& items,
                                         int runtime, int force) {
  if (items.empty()) return absl::OkStatus();
  sd_bus_message* raw = nullptr;
  int r = sd_bus_message_new_method_call(bus_, &raw, kDestination, kManagerPath, kManagerInterface,
                                         method);
  MessagePtr call(raw);
  if (r < 0) return BusStatus(r, nullptr, method);
  if ((r = sd_bus_message_open_container(call.get(), SD_BUS_TYPE_ARRAY, "s")) < 0) {
    return BusStatus(r, nullptr, method);
  }
  for (const std::string& item : items) {
    if ((r = sd_bus_message_append_basic(call.get(), SD_BUS_TYPE_STRING, item.c_str())) < 0) {
      return BusStatus(r, nullptr, method);
    }
  }
  if ((r = sd_bus_message_close_container(call.get())) < 0) return BusStatus(r, nullptr, method);
  // DisableUnitFiles takes (as, b runtime); Link/EnableUnitFiles (as, b runtime, b force).
  r = force < 0 ? sd_bus_message_append(call.get(), "b", runtime)
                : sd_bus_message_append(call.get(), "bb", runtime, force);
  if (r < 0) return BusStatus(r, nullptr, method);
  BusError error;
  sd_bus_message* reply = nullptr;
  r = sd_bus_call(bus_, call.get(), 0, error.get(), &reply);
  MessagePtr owned(reply);
  if (r < 0) return BusStatus(r, error.get(), absl::StrCat(method, " of ", items.size(), " units"));
  return absl::OkStatus();
}

absl::Status SdBusManager::Reload() {
  if (absl::Status s = CallWithArray("DisableUnitFiles", to_disable_, 1, -1);
      !s.ok() && !absl::IsNotFound(s)) {
    return s;
  }
  to_disable_.clear();
  if (absl::Status s = CallWithArray("LinkUnitFiles", to_link_, 1, 1); !s.ok()) return s;
  to_link_.clear();
  if (absl::Status s = CallWithArray("EnableUnitFiles", to_enable_, 1, 1); !s.ok()) return s;
  to_enable_.clear();
  BusError error;
  int r = sd_bus_call_method(bus_, kDestination, kManagerPath, kManagerInterface, "Reload",
                             error.get(), nullptr, "");
  if (r < 0) return BusStatus(r, error.get(), "Reload");
  return absl::OkStatus();
}

absl::Status SdBusManager::QueueJob(const char* method, absl::string_view name) {
  std::string unit(name);
  BusError error;
  sd_bus_message* reply = nullptr;
  int r = sd_bus_call_method(bus_, kDestination, kManagerPath, kManagerInterface, method,
                             error.get(), &reply, "ss", unit.c_str(), "replace");
  MessagePtr owned(reply);
  if (r < 0) return BusStatus(r, error.get(), absl::StrCat(method, " ", name));
  return ProcessPending();
}

absl::Status SdBusManager::StartUnit(absl::string_view name) { return QueueJob("StartUnit", name); }

absl::Status SdBusManager::StopUnit(absl::string_view name) { return QueueJob("StopUnit", name); }

absl::Status SdBusManager::RestartUnit(absl::string_view name) {
  return QueueJob("RestartUnit", name);
}

absl::StatusOr<std::map<std::string, std::string>> SdBusManager::ListInstalled() {
  std::map<std::string, std::string> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(unit_dir_, ec)) {
    std::string name = entry.path().filename().string();
    if (!ValidateUnitName(name).ok() || !entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream contents;
    contents << in.rdbuf();
    if (!in) return absl::InternalError(absl::StrCat("cannot read ", entry.path().string()));
    out.emplace(std::move(name), contents.str());
  }
  if (ec) return absl::InternalError(absl::StrCat("cannot list ", unit_dir_, ": ", ec.message()));
  return out;
}

absl::StatusOr<UnitStatus> SdBusManager::Fetch(const std::string& name) {
  char* raw_path = nullptr;
  int r = sd_bus_path_encode(kUnitPathPrefix, name.c_str(), &raw_path);
  if (r < 0) return BusStatus(r, nullptr, "encode unit path");
  std::string path(raw_path);
  std::free(raw_path);
  UnitStatus status;
  status.name = name;
  for (const char* interface : {kUnitInterface, kServiceInterface}) {
    if (interface == kServiceInterface && !IsService(name)) break;
    BusError error;
    sd_bus_message* reply = nullptr;
    r = sd_bus_call_method(bus_, kDestination, path.c_str(), kPropertiesInterface, "GetAll",
                           error.get(), &reply, "s", interface);
    MessagePtr owned(reply);
    if (r < 0) {
      absl::Status s = BusStatus(r, error.get(), absl::StrCat("GetAll ", interface, " of ", name));
      // A unit that systemd cannot load has no Service interface: keep what we have.
      if (interface == kServiceInterface && !absl::IsUnavailable(s)) break;
      return s;
    }
    if ((r = ReadProperties(reply, &status)) < 0) {
      return BusStatus(r, nullptr, absl::StrCat("read properties of ", name));
    }
  }
  return status;
}

absl::StatusOr<std::vector<UnitStatus>> SdBusManager::GetStatus(
    const std::vector<std::string>& names) {
  for (const std::string& name : names) {
    if (absl::Status s = ValidateUnitName(name); !s.ok()) return s;
  }
  // One ListUnitsByNames call gives the load/active/sub states of all; only
  // units that are not simply inactive are asked for their properties (main
  // PID, exit status, since), one by one.
  std::map<std::string, UnitStatus> listed;
  for (const std::string& name : names) {
    UnitStatus& s = listed[name];
    s.name = name;
    s.load_state = "not-found";
    s.active_state = "inactive";
    s.sub_state = "dead";
  }
  if (!names.empty()) {
    sd_bus_message* raw = nullptr;
    int r = sd_bus_message_new_method_call(bus_, &raw, kDestination, kManagerPath,
                                           kManagerInterface, "ListUnitsByNames");
    MessagePtr call(raw);
    if (r >= 0) r = sd_bus_message_open_container(call.get(), SD_BUS_TYPE_ARRAY, "s");
    for (const std::string& name : names) {
      if (r >= 0) r = sd_bus_message_append_basic(call.get(), SD_BUS_TYPE_STRING, name.c_str());
    }
    if (r >= 0) r = sd_bus_message_close_container(call.get());
    if (r < 0) return BusStatus(r, nullptr, "ListUnitsByNames");
    BusError error;
    sd_bus_message* reply_raw = nullptr;
    r = sd_bus_call(bus_, call.get(), 0, error.get(), &reply_raw);
    MessagePtr reply(reply_raw);
    if (r < 0) return BusStatus(r, error.get(), "ListUnitsByNames");
    if ((r = sd_bus_message_enter_container(reply.get(), SD_BUS_TYPE_ARRAY, "(ssssssouso)")) < 0) {
      return BusStatus(r, nullptr, "ListUnitsByNames reply");
    }
    const char *name, *description, *load, *active, *sub, *following, *path, *job_type, *job_path;
    uint32_t job_id;
    while ((r = sd_bus_message_read(reply.get(), "(ssssssouso)", &name, &description, &load,
                                    &active, &sub, &following, &path, &job_id, &job_type,
                                    &job_path)) > 0) {
      auto it = listed.find(name);
      if (it == listed.end()) continue;
      it->second.load_state = load;
      it->second.active_state = active;
      it->second.sub_state = sub;
    }
    if (r < 0) return BusStatus(r, nullptr, "ListUnitsByNames reply");
  }
  std::vector<UnitStatus> out;
  out.reserve(names.size());
  for (const std::string& name : names) {
    UnitStatus status = listed[name];
    if (status.active_state != "inactive") {
      absl::StatusOr<UnitStatus> fetched = Fetch(name);
      if (!fetched.ok()) return fetched.status();
      status = *std::move(fetched);
    }
    tracked_[name] = status;
    out.push_back(std::move(status));
  }
  return out;
}

void SdBusManager::Untrack(absl::string_view name) {
  if (auto it = tracked_.find(name); it != tracked_.end()) tracked_.erase(it);
  std::string key(name);
  changed_.erase(key);
  refetch_.erase(key);
}

absl::StatusOr<std::vector<UnitStatus>> SdBusManager::WaitForChanges(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  bool woken = false;
  while (true) {
    if (absl::Status s = ProcessPending(); !s.ok()) return s;
    uint64_t count = 0;
    if (read(wake_fd_, &count, sizeof(count)) == sizeof(count)) woken = true;
    if (woken || !changed_.empty() || !refetch_.empty()) break;
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) break;
    int bus_fd = sd_bus_get_fd(bus_);
    int events = sd_bus_get_events(bus_);
    if (bus_fd < 0 || events < 0) return BusStatus(bus_fd < 0 ? bus_fd : events, nullptr, "bus fd");
    uint64_t bus_timeout_usec = 0;
    int64_t wait_ms = absl::ToInt64Milliseconds(left) + 1;
    if (sd_bus_get_timeout(bus_, &bus_timeout_usec) > 0 && bus_timeout_usec != UINT64_MAX) {
      struct timespec ts;
      clock_gettime(CLOCK_MONOTONIC, &ts);
      uint64_t now_usec = static_cast<uint64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
      int64_t bus_ms = bus_timeout_usec > now_usec ? (bus_timeout_usec - now_usec) / 1000 + 1 : 0;
      wait_ms = std::min(wait_ms, bus_ms);
    }
    struct pollfd fds[2] = {{bus_fd, static_cast<short>(events), 0}, {wake_fd_, POLLIN, 0}};
    int r = poll(fds, 2, static_cast<int>(std::min<int64_t>(wait_ms, 1 << 30)));
    if (r < 0 && errno != EINTR) return absl::InternalError(absl::StrCat("poll: ", ErrnoText(errno)));
  }
  std::set<std::string> refetch = std::move(refetch_);
  refetch_.clear();
  for (const std::string& name : refetch) {
    auto it = tracked_.find(name);
    if (it == tracked_.end()) continue;
    absl::StatusOr<UnitStatus> status = Fetch(name);
    if (!status.ok()) return status.status();
    if (*status != it->second) {
      it->second = *std::move(status);
      changed_.insert(name);
    }
  }
  std::vector<UnitStatus> out;
  for (const std::string& name : changed_) {
    auto it = tracked_.find(name);
    if (it != tracked_.end()) out.push_back(it->second);
  }
  changed_.clear();
  return out;
}

void SdBusManager::Wake() {
  uint64_t one = 1;
  // An eventfd write cannot fail short of overflow; a lost wake-up only delays.
  [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof(one));
}

// ---------------------------------------------------------------------------
// GetUnitDetails (for `fleetctl status`).

namespace {

// Reads the a{sv} of a GetAll reply into `d`; skips what status does not show.
int ReadDetails(sd_bus_message* m, UnitDetails* d) {
  return ForEachProperty(m, [m, d](absl::string_view k) {
    if (int r = ReadStatusProperty(m, k, &d->status); r != 0) return r;
    int r = 0;
    if (k == "Description" || k == "FragmentPath" || k == "UnitFileState") {
      const char* str = nullptr;
      if ((r = sd_bus_message_read(m, "v", "s", &str)) < 0) return r;
      (k == "Description" ? d->description : k == "FragmentPath" ? d->fragment_path : d->unit_file_state) = str;
    } else if (k == "MemoryCurrent" || k == "TasksCurrent") {
      uint64_t u64 = 0;
      if ((r = sd_bus_message_read(m, "v", "t", &u64)) < 0) return r;
      // UINT64_MAX: not accounted (or not running).
      if (u64 != UINT64_MAX) (k == "MemoryCurrent" ? d->memory_bytes : d->tasks) = u64;
    } else {
      return 0;
    }
    return 1;
  });
}

}  // namespace

absl::StatusOr<UnitDetails> SdBusManager::GetUnitDetails(absl::string_view name) {
  if (absl::Status s = ValidateUnitName(name); !s.ok()) return s;
  std::string unit(name);
  // LoadUnit gives the object path and loads the unit if systemd had
  // unloaded it (an inactive unit without references), as systemctl does.
  BusError error;
  sd_bus_message* reply_raw = nullptr;
  int r = sd_bus_call_method(bus_, kDestination, kManagerPath, kManagerInterface, "LoadUnit",
                             error.get(), &reply_raw, "s", unit.c_str());
  MessagePtr load_reply(reply_raw);
  if (r < 0) return BusStatus(r, error.get(), absl::StrCat("LoadUnit ", name));
  const char* path = nullptr;
  if ((r = sd_bus_message_read(load_reply.get(), "o", &path)) < 0) {
    return BusStatus(r, nullptr, absl::StrCat("LoadUnit ", name, " reply"));
  }
  std::string object_path(path);
  UnitDetails details;
  details.status.name = unit;
  for (const char* interface : {kUnitInterface, kServiceInterface}) {
    if (interface == kServiceInterface && !IsService(name)) break;
    BusError get_error;
    sd_bus_message* raw = nullptr;
    r = sd_bus_call_method(bus_, kDestination, object_path.c_str(), kPropertiesInterface, "GetAll",
                           get_error.get(), &raw, "s", interface);
    MessagePtr reply(raw);
    if (r < 0) {
      absl::Status s =
          BusStatus(r, get_error.get(), absl::StrCat("GetAll ", interface, " of ", name));
      // A unit that systemd cannot load has no Service interface: keep what we have.
      if (interface == kServiceInterface && !absl::IsUnavailable(s)) break;
      return s;
    }
    if ((r = ReadDetails(reply.get(), &details)) < 0) {
      return BusStatus(r, nullptr, absl::StrCat("read properties of ", name));
    }
  }
  return details;
}

}  // namespace fleet::agent
