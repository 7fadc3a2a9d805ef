#include "fleetctl/unit_args.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/unit/unit_name.h"

namespace fleet::ctl {
namespace {

absl::StatusOr<std::string> ReadLocalFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read unit file ", path));
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

// Files about to be created by this command, by unit name.
using Queued = std::map<std::string, std::string>;

// The contents to create `unit` from: its own file, or its template's file
// beside the given path, or the template about to be created with it, or the
// template already on the cluster.
absl::StatusOr<std::string> ContentsFor(Client& client, const UnitArg& unit, const Queued& queued) {
  namespace fs = std::filesystem;
  if (unit.local_path && fs::exists(*unit.local_path)) return ReadLocalFile(*unit.local_path);

  auto name = ParseUnitName(unit.name);
  if (!name.ok()) return name.status();
  if (!name->IsInstance()) {
    return absl::NotFoundError(absl::StrCat("unit ", unit.name,
                                            " is not on the cluster and no file was given"));
  }
  std::string template_name = name->TemplateName();
  if (unit.local_path) {
    fs::path beside = fs::path(*unit.local_path).parent_path() / template_name;
    if (fs::exists(beside)) return ReadLocalFile(beside.string());
  }
  if (auto it = queued.find(template_name); it != queued.end()) return it->second;
  auto from_cluster = client.GetUnit(template_name);
  if (from_cluster.ok()) return from_cluster->contents();
  if (from_cluster.status().code() != absl::StatusCode::kNotFound) return from_cluster.status();
  return absl::NotFoundError(absl::StrCat("unit ", unit.name,
                                          " is not on the cluster, and neither is its template ",
                                          template_name));
}

}  // namespace

std::string MangleUnitName(const std::string& name) {
  if (name.find('.') != std::string::npos) return name;
  return name + ".service";
}

bool IsGlob(const std::string& arg) { return arg.find_first_of("*?[") != std::string::npos; }

absl::StatusOr<std::vector<UnitArg>> ParseUnitArgs(const std::vector<std::string>& args) {
  namespace fs = std::filesystem;
  std::vector<UnitArg> units;
  for (const auto& arg : args) {
    if (arg.empty()) return absl::InvalidArgumentError("an empty unit argument");
    bool is_path = absl::StrContains(arg, '/') || fs::is_regular_file(arg);
    if (!is_path) {
      units.push_back({MangleUnitName(arg), std::nullopt});
      continue;
    }
    std::string base = fs::path(arg).filename().string();
    // A path to an instance ("./web@3.service") may stand for its template's file.
    auto name = ParseUnitName(base);
    if (!fs::exists(arg) && !(name.ok() && name->IsInstance())) {
      return absl::NotFoundError(absl::StrCat("unit file ", arg, " does not exist"));
    }
    units.push_back({base, arg});
  }
  return units;
}

absl::StatusOr<std::vector<std::string>> ExpandNames(Client& client,
                                                     const std::vector<std::string>& args,
                                                     Templates templates) {
  std::vector<std::string> names;
  std::set<std::string> seen;
  for (const auto& arg : args) {
    if (!IsGlob(arg)) {
      std::string name = MangleUnitName(arg);
      if (seen.insert(name).second) names.push_back(name);
      continue;
    }
    auto units = client.ListUnits(arg, /*omit_contents=*/true);
    if (!units.ok()) return units.status();
    size_t matched = 0;
    for (const auto& unit : *units) {
      auto name = ParseUnitName(unit.name());
      if (templates == Templates::kSkip && name.ok() && name->IsTemplate()) continue;
      ++matched;
      if (seen.insert(unit.name()).second) names.push_back(unit.name());
    }
    if (matched == 0) return absl::NotFoundError(absl::StrCat("no unit matches ", arg));
  }
  return names;
}

absl::StatusOr<std::vector<std::string>> EnsureOnCluster(Client& client,
                                                         const std::vector<UnitArg>& units,
                                                         ExistingUnit existing) {
  std::vector<std::string> names;
  std::vector<v1::CreateUnitRequest> creates;
  Queued queued;
  for (const auto& unit : units) {
    names.push_back(unit.name);
    if (auto it = queued.find(unit.name); it != queued.end()) {
      // Named twice: the same file is one unit; two files are a mistake.
      auto contents = ContentsFor(client, unit, queued);
      if (!contents.ok()) return contents.status();
      if (*contents == it->second) continue;
      return absl::InvalidArgumentError(
          absl::StrCat("unit ", unit.name, " is given twice, with different files"));
    }
    auto current = client.GetUnit(unit.name);
    if (!current.ok() && current.status().code() != absl::StatusCode::kNotFound) {
      return current.status();
    }
    bool compare_local = current.ok() && unit.local_path &&
                         std::filesystem::exists(*unit.local_path);
    if (current.ok() && (!compare_local || existing == ExistingUnit::kKeep)) continue;

    auto contents = ContentsFor(client, unit, queued);
    if (!contents.ok()) return contents.status();
    if (current.ok() && current->contents() == *contents) continue;
    if (current.ok() && existing == ExistingUnit::kRefuse) {
      return absl::AlreadyExistsError(absl::StrCat(
          "unit ", unit.name, " is on the cluster with other contents than ", *unit.local_path,
          "; use --replace to replace it"));
    }
    v1::CreateUnitRequest& request = creates.emplace_back();
    request.set_name(unit.name);
    request.set_contents(*contents);
    request.set_replace(current.ok());
    if (!current.ok()) request.set_desired_state(v1::DESIRED_STATE_INACTIVE);
    queued.emplace(unit.name, *contents);
  }
  if (absl::Status s = client.CreateUnits(creates); !s.ok()) return s;
  return names;
}

absl::StatusOr<std::vector<std::string>> SubmitArgs(Client& client,
                                                    const std::vector<std::string>& args,
                                                    ExistingUnit existing) {
  auto units = ParseUnitArgs(args);
  if (!units.ok()) return units.status();
  return EnsureOnCluster(client, *units, existing);
}

}  // namespace fleet::ctl
