#include "common/tls/authorize.h"

#include "absl/strings/str_cat.h"

namespace fleet::tls {
namespace {

// Debian's abseil has its own string_view type; this bridges std::string_view.
absl::string_view Av(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// What a method needs; every role that may call it follows from this.
enum class Access {
  kRead,         // viewer, admin, engine
  kWrite,        // admin, engine
  kAgentStream,  // agent, engine
};

struct Rule {
  std::string_view method;
  Access access;
};

// Deny by default: a method missing here is refused for everyone.
constexpr Rule kRules[] = {
    {"/fleet.v1.Fleet/CreateUnit", Access::kWrite},
    {"/fleet.v1.Fleet/CreateUnits", Access::kWrite},
    {"/fleet.v1.Fleet/GetUnit", Access::kRead},
    {"/fleet.v1.Fleet/ListUnits", Access::kRead},
    {"/fleet.v1.Fleet/SetUnitDesiredState", Access::kWrite},
    {"/fleet.v1.Fleet/SetUnitsDesiredState", Access::kWrite},
    {"/fleet.v1.Fleet/DestroyUnit", Access::kWrite},
    {"/fleet.v1.Fleet/ListUnitStates", Access::kRead},
    {"/fleet.v1.Fleet/ListMachines", Access::kRead},
    // Being added to fleet.proto (unit status and journal reads).
    {"/fleet.v1.Fleet/GetUnitStatus", Access::kRead},
    {"/fleet.v1.Fleet/ReadJournal", Access::kRead},
    {"/fleet.v1.AgentService/Connect", Access::kAgentStream},
};

bool Allows(Access access, Role role) {
  switch (access) {
    case Access::kRead:
      return role == Role::kViewer || role == Role::kAdmin || role == Role::kEngine;
    case Access::kWrite:
      return role == Role::kAdmin || role == Role::kEngine;
    case Access::kAgentStream:
      return role == Role::kAgent || role == Role::kEngine;
  }
  return false;
}

// The role a person would be given for this access (engines may do all).
std::string_view NeededRole(Access access) {
  switch (access) {
    case Access::kRead:
      return "viewer or admin";
    case Access::kWrite:
      return "admin";
    case Access::kAgentStream:
      return "agent";
  }
  return "unknown";
}

}  // namespace

absl::Status Authorize(const Identity& identity, std::string_view full_method) {
  for (const Rule& rule : kRules) {
    if (rule.method != full_method) continue;
    if (Allows(rule.access, identity.role)) return absl::OkStatus();
    return absl::PermissionDeniedError(
        absl::StrCat(Av(full_method), " needs role ", Av(NeededRole(rule.access)),
                     "; the client certificate has role ", identity.Describe()));
  }
  return absl::PermissionDeniedError(
      absl::StrCat(Av(full_method), " is not a method this server authorizes for anyone"));
}

grpc::Status AuthorizingProcessor::Process(const InputMetadata& auth_metadata, grpc::AuthContext* context,
                                           OutputMetadata* /*consumed_auth_metadata*/,
                                           OutputMetadata* /*response_metadata*/) {
  auto path = auth_metadata.find(":path");
  if (path == auth_metadata.end()) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "the call names no method (:path)");
  }
  if (context == nullptr) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "the call has no authentication context");
  }
  absl::StatusOr<Identity> identity = IdentityFromAuthContext(*context);
  absl::Status status = identity.ok()
                            ? Authorize(*identity, std::string_view(path->second.data(), path->second.size()))
                            : identity.status();
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

}  // namespace fleet::tls
