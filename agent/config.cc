#include "agent/config.h"

#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/tls/material.h"
#include "yaml-cpp/yaml.h"

namespace fleet::agent {

absl::StatusOr<std::map<std::string, std::string>> ParseMetadata(const std::string& text) {
  std::map<std::string, std::string> out;
  for (absl::string_view entry : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    entry = absl::StripAsciiWhitespace(entry);
    size_t eq = entry.find('=');
    if (eq == absl::string_view::npos || eq == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("metadata entry '", entry, "' is not key=value"));
    }
    out[std::string(entry.substr(0, eq))] = std::string(entry.substr(eq + 1));
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> ParseEngines(const std::string& text) {
  std::vector<std::string> out;
  for (absl::string_view entry : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    entry = absl::StripAsciiWhitespace(entry);
    size_t colon = entry.rfind(':');
    int port = 0;
    if (colon == absl::string_view::npos || colon == 0 ||
        !absl::SimpleAtoi(entry.substr(colon + 1), &port) || port <= 0 || port > 65535) {
      return absl::InvalidArgumentError(absl::StrCat("engine '", entry, "' is not HOST:PORT"));
    }
    out.emplace_back(entry);
  }
  if (out.empty()) return absl::InvalidArgumentError("no engine address given (--engine HOST:PORT)");
  return out;
}

absl::StatusOr<BusKind> ParseBusKind(const std::string& text) {
  if (text == "system") return BusKind::kSystem;
  if (text == "user") return BusKind::kUser;
  return absl::InvalidArgumentError(absl::StrCat("--systemd must be system or user, not '", text, "'"));
}

absl::Status MergeYamlConfig(const std::string& yaml, const std::set<std::string>& from_command_line,
                             AgentConfig* config) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("config is not YAML: ", e.what()));
  }
  if (root.IsNull()) return absl::OkStatus();
  if (!root.IsMap()) return absl::InvalidArgumentError("config must be a YAML map of flag names");
  try {
    for (const auto& item : root) {
      std::string key = item.first.as<std::string>();
      const YAML::Node& value = item.second;
      if (from_command_line.contains(key)) continue;
      auto bad = [&](absl::string_view why) {
        return absl::InvalidArgumentError(absl::StrCat("config key '", key, "': ", why));
      };
      if (key == "engine") {
        std::string text;
        if (value.IsSequence()) {
          for (const auto& e : value) text += e.as<std::string>() + ",";
        } else {
          text = value.as<std::string>();
        }
        absl::StatusOr<std::vector<std::string>> engines = ParseEngines(text);
        if (!engines.ok()) return bad(engines.status().message());
        config->engines = *std::move(engines);
      } else if (key == "machine-id") {
        config->machine_id = value.as<std::string>();
      } else if (key == "metadata") {
        if (value.IsMap()) {
          config->metadata.clear();
          for (const auto& kv : value) {
            config->metadata[kv.first.as<std::string>()] = kv.second.as<std::string>();
          }
        } else {
          absl::StatusOr<std::map<std::string, std::string>> m = ParseMetadata(value.as<std::string>());
          if (!m.ok()) return bad(m.status().message());
          config->metadata = *std::move(m);
        }
      } else if (key == "public-ip") {
        config->public_ip = value.as<std::string>();
      } else if (key == "systemd") {
        absl::StatusOr<BusKind> kind = ParseBusKind(value.as<std::string>());
        if (!kind.ok()) return bad(kind.status().message());
        config->systemd = *kind;
      } else if (key == "unit-dir") {
        config->unit_dir = value.as<std::string>();
      } else if (key == "resync-interval") {
        double seconds = value.as<double>();
        if (!(seconds > 0)) return bad("must be a positive number of seconds");
        config->resync_interval = absl::Seconds(seconds);
      } else if (key == "log-level") {
        config->log_level = value.as<std::string>();
      } else if (key == "ca-file") {
        config->ca_file = value.as<std::string>();
      } else if (key == "cert-file") {
        config->cert_file = value.as<std::string>();
      } else if (key == "key-file") {
        config->key_file = value.as<std::string>();
      } else if (key == "insecure") {
        config->insecure = value.as<bool>();
      } else {
        return bad("unknown key");
      }
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("config: ", e.what()));
  }
  return absl::OkStatus();
}

absl::Status ValidateTls(const AgentConfig& config) {
  switch (tls::ChooseTransport({config.ca_file, config.cert_file, config.key_file}, config.insecure)) {
    case tls::TransportChoice::kMutualTls:
    case tls::TransportChoice::kPlaintext:
      return absl::OkStatus();
    case tls::TransportChoice::kConflict:
      return tls::ConflictError();
    case tls::TransportChoice::kNoFiles:
      return absl::InvalidArgumentError(
          "TLS to the engine needs --ca-file, --cert-file and --key-file (make an agent certificate "
          "with scripts/pki agent DIR MACHINE_ID), or give --insecure to talk PLAINTEXT");
    case tls::TransportChoice::kSomeFiles:
      break;
  }
  return absl::InvalidArgumentError(
      "TLS to the engine needs all three of --ca-file, --cert-file and --key-file");
}

absl::StatusOr<std::string> ResolveMachineId(const std::string& flag,
                                             const std::string& machine_id_file) {
  if (!flag.empty()) return flag;
  std::ifstream in(machine_id_file);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", machine_id_file, " (give --machine-id)"));
  std::string id;
  std::getline(in, id);
  id = std::string(absl::StripAsciiWhitespace(id));
  if (id.empty()) return absl::InvalidArgumentError(absl::StrCat(machine_id_file, " is empty"));
  return id;
}

}  // namespace fleet::agent
