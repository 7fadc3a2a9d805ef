#include "common/tls/identity.h"

#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "grpc/grpc_security_constants.h"

namespace fleet::tls {
namespace {

// Debian's abseil has its own string_view type; this bridges std::string_view.
absl::string_view Av(std::string_view s) { return absl::string_view(s.data(), s.size()); }

constexpr std::string_view kScheme = "fleet://";
constexpr std::string_view kExpected =
    "expected a SAN URI fleet://role/admin, fleet://role/viewer, fleet://agent/MACHINE_ID or "
    "fleet://engine/NAME; scripts/pki makes such certificates";

// Machine ids and engine names: what scripts/pki accepts.
bool ValidName(std::string_view s) {
  if (s.empty() || s.size() > 64 || s[0] == '.' || s[0] == '-') return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// The identity one fleet:// URI names, or nullopt when it names none.
std::optional<Identity> ParseFleetUri(std::string_view uri, std::string_view common_name) {
  std::string_view rest = uri.substr(kScheme.size());
  if (rest == "role/admin") return Identity{Role::kAdmin, "", std::string(common_name)};
  if (rest == "role/viewer") return Identity{Role::kViewer, "", std::string(common_name)};
  constexpr std::string_view kAgent = "agent/", kEngine = "engine/";
  if (rest.starts_with(kAgent) && ValidName(rest.substr(kAgent.size()))) {
    return Identity{Role::kAgent, std::string(rest.substr(kAgent.size())), ""};
  }
  if (rest.starts_with(kEngine) && ValidName(rest.substr(kEngine.size()))) {
    return Identity{Role::kEngine, "", std::string(rest.substr(kEngine.size()))};
  }
  return std::nullopt;
}

}  // namespace

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kAdmin:
      return "admin";
    case Role::kViewer:
      return "viewer";
    case Role::kAgent:
      return "agent";
    case Role::kEngine:
      return "engine";
  }
  return "unknown";
}

std::string Identity::Describe() const {
  switch (role) {
    case Role::kAgent:
      return absl::StrCat("agent (machine ", machine_id, ")");
    case Role::kAdmin:
    case Role::kViewer:
    case Role::kEngine:
      if (name.empty()) return std::string(RoleName(role));
      return absl::StrCat(Av(RoleName(role)), " (", name, ")");
  }
  return std::string(RoleName(role));
}

absl::StatusOr<Identity> IdentityFromSans(absl::Span<const std::string> uri_sans,
                                          std::string_view common_name) {
  std::vector<absl::string_view> fleet_uris;
  for (const std::string& uri : uri_sans) {
    if (absl::StartsWithIgnoreCase(uri, Av(kScheme))) fleet_uris.push_back(uri);
  }
  if (fleet_uris.empty()) {
    return absl::PermissionDeniedError(absl::StrCat("certificate has no fleet role (", Av(kExpected), ")"));
  }
  if (fleet_uris.size() > 1) {
    return absl::PermissionDeniedError(absl::StrCat("certificate has ", fleet_uris.size(), " fleet roles (",
                                                    absl::StrJoin(fleet_uris, ", "),
                                                    "); exactly one is allowed"));
  }
  // The scheme matched case-insensitively so that "FLEET://role/admin" is
  // refused by name below instead of being silently ignored.
  std::string_view uri(fleet_uris.front().data(), fleet_uris.front().size());
  std::optional<Identity> identity;
  if (uri.starts_with(kScheme)) identity = ParseFleetUri(uri, common_name);
  if (!identity.has_value()) {
    return absl::PermissionDeniedError(
        absl::StrCat("certificate has an unknown fleet role ", Av(uri), " (", Av(kExpected), ")"));
  }
  return *std::move(identity);
}

absl::StatusOr<Identity> IdentityFromAuthContext(const grpc::AuthContext& context) {
  if (!context.IsPeerAuthenticated()) {
    return absl::UnauthenticatedError(
        "the caller presented no client certificate (plaintext connection or TLS without a "
        "client certificate)");
  }
  std::vector<std::string> uris;
  for (const grpc::string_ref& value : context.FindPropertyValues(GRPC_PEER_URI_PROPERTY_NAME)) {
    uris.emplace_back(value.data(), value.size());
  }
  std::string common_name;
  std::vector<grpc::string_ref> names = context.FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME);
  if (!names.empty()) common_name.assign(names.front().data(), names.front().size());
  return IdentityFromSans(uris, common_name);
}

absl::StatusOr<Identity> CallerIdentity(const grpc::ServerContextBase& context) {
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth == nullptr) {
    return absl::UnauthenticatedError("the call has no authentication context (plaintext)");
  }
  return IdentityFromAuthContext(*auth);
}

}  // namespace fleet::tls
