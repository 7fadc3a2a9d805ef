#pragma once

// Turns fleetctl's unit arguments into units on the cluster, as fleet did:
// an argument is a local file path ("./units/web@.service") or a unit name
// ("web@3.service", "web" meaning "web.service"); names may be globs
// ("web@*") expanded against the cluster's units; an instance that is not on
// the cluster is created from its template, found next to the given path or
// on the cluster.

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "fleetctl/client.h"

namespace fleet::ctl {

// One unit argument.
struct UnitArg {
  std::string name;                       // the unit's name
  std::optional<std::string> local_path;  // the file it came from, if any
};

// fleet's unitNameMangle: a name without a type suffix gets ".service".
std::string MangleUnitName(const std::string& name);

// Whether the argument is a glob (has '*', '?' or '[').
bool IsGlob(const std::string& arg);

// Classifies `args` without contacting the engine: an argument naming an
// existing file, or containing '/', is a path (the file must exist).
// INVALID_ARGUMENT names an argument that is neither.
absl::StatusOr<std::vector<UnitArg>> ParseUnitArgs(const std::vector<std::string>& args);

// Whether a glob may stand for templates ("web@.service"): destroy and cat
// take them, commands that change what runs do not (a template never runs).
enum class Templates { kInclude, kSkip };

// Expands globs against the cluster's units and keeps other names as they are
// (their existence is not checked). A glob that matches nothing is NOT_FOUND.
absl::StatusOr<std::vector<std::string>> ExpandNames(Client& client,
                                                     const std::vector<std::string>& args,
                                                     Templates templates);

// How EnsureOnCluster treats a unit that exists with other contents than its
// local file.
enum class ExistingUnit { kKeep, kReplace, kRefuse };

// Makes sure every unit is on the cluster (creating it from its file or its
// template; desired state inactive; 100 units per request), and returns their
// names. Stops at the first error, which names the unit; the requests before
// it stay applied, and the message says how many units they created.
absl::StatusOr<std::vector<std::string>> EnsureOnCluster(Client& client,
                                                         const std::vector<UnitArg>& units,
                                                         ExistingUnit existing);

// ParseUnitArgs then EnsureOnCluster: what submit, load and start do first.
absl::StatusOr<std::vector<std::string>> SubmitArgs(Client& client,
                                                    const std::vector<std::string>& args,
                                                    ExistingUnit existing);

}  // namespace fleet::ctl
