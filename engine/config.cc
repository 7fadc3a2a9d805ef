#include "engine/config.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/tls/credentials.h"
#include "yaml-cpp/yaml.h"

namespace fleet {

absl::Status ValidateListenAddress(absl::string_view address) {
  size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen address \"", address, "\" is not HOST:PORT"));
  }
  absl::string_view host = address.substr(0, colon);
  absl::string_view port = address.substr(colon + 1);
  if (host.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen address \"", address, "\" has no host (use 0.0.0.0 for every interface)"));
  }
  if (host.find(':') != absl::string_view::npos && (host.front() != '[' || host.back() != ']')) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen address \"", address, "\": put an IPv6 host in brackets, e.g. [::1]:7001"));
  }
  uint32_t number = 0;
  if (port.empty() || !absl::SimpleAtoi(port, &number) || number > 65535 ||
      port.find_first_not_of("0123456789") != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen address \"", address, "\" has a bad port (0..65535)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<absl::Duration> ParsePositiveDuration(absl::string_view text) {
  absl::Duration d;
  if (!absl::ParseDuration(text, &d) || d == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", text, "\" is not a duration (e.g. 30s, 1m, 500ms)"));
  }
  if (d <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat("\"", text, "\" must be more than zero"));
  }
  return d;
}

absl::StatusOr<StoreKind> ParseStoreKind(absl::string_view text) {
  if (text == "embedded") return StoreKind::kEmbedded;
  if (text == "etcd") return StoreKind::kEtcd;
  return absl::InvalidArgumentError(
      absl::StrCat("\"", text, "\" is not a store (embedded or etcd)"));
}

namespace {

// One etcd endpoint: HOST:PORT with a port 1..65535 (a scheme is dropped).
absl::StatusOr<std::string> ParseEtcdEndpoint(absl::string_view text) {
  absl::string_view endpoint = absl::StripAsciiWhitespace(text);
  if (!absl::ConsumePrefix(&endpoint, "http://")) absl::ConsumePrefix(&endpoint, "https://");
  if (absl::Status s = ValidateListenAddress(endpoint); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("etcd endpoint \"", text, "\" is not HOST:PORT"));
  }
  if (absl::EndsWith(endpoint, ":0")) {
    return absl::InvalidArgumentError(absl::StrCat("etcd endpoint \"", text, "\" has port 0"));
  }
  return std::string(endpoint);
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ParseEtcdEndpoints(absl::string_view text) {
  std::vector<std::string> endpoints;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    absl::StatusOr<std::string> endpoint = ParseEtcdEndpoint(part);
    if (!endpoint.ok()) return endpoint.status();
    endpoints.push_back(*endpoint);
  }
  if (endpoints.empty()) return absl::InvalidArgumentError("no etcd endpoint given");
  return endpoints;
}

std::string AdvertiseAddress(const EngineConfig& config) {
  return config.advertise.empty() ? config.listen : config.advertise;
}

absl::Status ValidateConfig(const EngineConfig& config) {
  switch (config.store) {
    case StoreKind::kEmbedded:
      break;
    case StoreKind::kEtcd: {
      if (config.etcd_endpoints.empty()) {
        return absl::InvalidArgumentError(
            "store etcd needs etcd_endpoints (--etcd-endpoints HOST:PORT,...)");
      }
      const std::string advertise = AdvertiseAddress(config);
      const absl::string_view host = absl::string_view(advertise).substr(0, advertise.rfind(':'));
      if ((!config.advertise.empty() && absl::EndsWith(advertise, ":0")) || host == "0.0.0.0" ||
          host == "[::]") {
        return absl::InvalidArgumentError(absl::StrCat(
            "store etcd: the other engines send clients and agents to this one's address, and \"",
            advertise, "\" is not one they can reach: give --advertise HOST:PORT (config key "
            "advertise), or --listen with a host that is not a wildcard"));
      }
      // The store holds every unit file, which the agents run as root: the
      // link to it is TLS unless the operator asked for plaintext everywhere.
      if (config.etcd_ca_file.empty() && config.etcd_cert_file.empty() && !config.insecure) {
        return absl::InvalidArgumentError(
            "store etcd: the link to etcd is TLS by default: give etcd_ca_file (--etcd-ca-file, "
            "the CA of etcd's client port) and, when etcd checks client certificates, "
            "etcd_cert_file and etcd_key_file; or give --insecure to use PLAINTEXT to etcd as well");
      }
      if (config.leader_ttl < absl::Seconds(1)) {
        return absl::InvalidArgumentError(
            absl::StrCat("leader_ttl ", absl::FormatDuration(config.leader_ttl),
                         " is too short: at least 1s"));
      }
      break;
    }
  }
  if (config.etcd_cert_file.empty() != config.etcd_key_file.empty()) {
    return absl::InvalidArgumentError(
        "etcd_cert_file and etcd_key_file go together: give both or neither");
  }
  return absl::OkStatus();
}

absl::Status ValidateTls(const EngineConfig& config) {
  switch (tls::ChooseTransport({config.ca_file, config.cert_file, config.key_file}, config.insecure)) {
    case tls::TransportChoice::kMutualTls:
    case tls::TransportChoice::kPlaintext:
      return absl::OkStatus();
    case tls::TransportChoice::kConflict:
      return tls::ConflictError();
    case tls::TransportChoice::kNoFiles:
      return absl::InvalidArgumentError(
          "TLS needs --ca-file, --cert-file and --key-file (make them with scripts/pki init and "
          "scripts/pki engine), or give --insecure to serve PLAINTEXT");
    case tls::TransportChoice::kSomeFiles:
      break;
  }
  return absl::InvalidArgumentError(
      "TLS needs all three of --ca-file, --cert-file and --key-file (config keys ca_file, "
      "cert_file, key_file)");
}

namespace {

absl::Status KeyError(absl::string_view file, absl::string_view key, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(file, ": key ", key, ": ", problem));
}

}  // namespace

absl::Status ApplyConfigYaml(absl::string_view file, absl::string_view text, EngineConfig& config) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": line ", e.mark.line + 1, ": ", e.msg));
  }
  if (root.IsNull()) return absl::OkStatus();  // an empty file sets nothing
  if (!root.IsMap()) {
    return absl::InvalidArgumentError(
        absl::StrCat(file, ": the document must be a mapping of keys to values"));
  }
  EngineConfig result = config;
  for (const auto& entry : root) {
    std::string key;
    try {
      key = entry.first.as<std::string>();
    } catch (const YAML::Exception&) {
      return absl::InvalidArgumentError(
          absl::StrCat(file, ": line ", entry.first.Mark().line + 1, ": a key must be a string"));
    }
    const YAML::Node& value = entry.second;
    if (key == "etcd_endpoints") {
      std::vector<std::string> endpoints;
      if (value.IsSequence()) {
        for (const YAML::Node& item : value) {
          if (!item.IsScalar()) return KeyError(file, key, "every item must be a single HOST:PORT");
          absl::StatusOr<std::string> endpoint = ParseEtcdEndpoint(item.Scalar());
          if (!endpoint.ok()) return KeyError(file, key, endpoint.status().message());
          endpoints.push_back(*endpoint);
        }
        if (endpoints.empty()) return KeyError(file, key, "no etcd endpoint given");
      } else if (value.IsScalar()) {
        absl::StatusOr<std::vector<std::string>> parsed = ParseEtcdEndpoints(value.Scalar());
        if (!parsed.ok()) return KeyError(file, key, parsed.status().message());
        endpoints = *parsed;
      } else {
        return KeyError(file, key, "must be a list of HOST:PORT");
      }
      result.etcd_endpoints = endpoints;
      continue;
    }
    if (!value.IsScalar()) {
      return KeyError(file, key, "must be a single value");
    }
    std::string scalar = value.Scalar();
    if (key == "listen") {
      if (absl::Status s = ValidateListenAddress(scalar); !s.ok()) return KeyError(file, key, s.message());
      result.listen = scalar;
    } else if (key == "data_dir") {
      if (scalar.empty()) return KeyError(file, key, "must not be empty");
      result.data_dir = scalar;
    } else if (key == "agent_ttl") {
      absl::StatusOr<absl::Duration> ttl = ParsePositiveDuration(scalar);
      if (!ttl.ok()) return KeyError(file, key, ttl.status().message());
      result.agent_ttl = *ttl;
    } else if (key == "store") {
      absl::StatusOr<StoreKind> kind = ParseStoreKind(scalar);
      if (!kind.ok()) return KeyError(file, key, kind.status().message());
      result.store = *kind;
    } else if (key == "ca_file") {
      result.ca_file = scalar;
    } else if (key == "cert_file") {
      result.cert_file = scalar;
    } else if (key == "key_file") {
      result.key_file = scalar;
    } else if (key == "insecure") {
      if (scalar == "true") {
        result.insecure = true;
      } else if (scalar == "false") {
        result.insecure = false;
      } else {
        return KeyError(file, key, "must be true or false");
      }
    } else if (key == "etcd_ca_file") {
      result.etcd_ca_file = scalar;
    } else if (key == "etcd_cert_file") {
      result.etcd_cert_file = scalar;
    } else if (key == "etcd_key_file") {
      result.etcd_key_file = scalar;
    } else if (key == "advertise") {
      if (absl::Status s = ValidateListenAddress(scalar); !s.ok()) return KeyError(file, key, s.message());
      result.advertise = scalar;
    } else if (key == "name") {
      if (scalar.empty()) return KeyError(file, key, "must not be empty");
      result.name = scalar;
    } else if (key == "leader_ttl") {
      absl::StatusOr<absl::Duration> ttl = ParsePositiveDuration(scalar);
      if (!ttl.ok()) return KeyError(file, key, ttl.status().message());
      result.leader_ttl = *ttl;
    } else {
      return KeyError(file, key,
                      "unknown key (known: listen, data_dir, agent_ttl, store, ca_file, "
                      "cert_file, key_file, insecure, etcd_endpoints, etcd_ca_file, etcd_cert_file, "
                      "etcd_key_file, advertise, name, leader_ttl)");
    }
  }
  config = result;
  return absl::OkStatus();
}

absl::Status LoadConfigFile(const std::string& path, EngineConfig& config) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int err = errno;
    std::string message = absl::StrCat(path, ": cannot read: ", std::strerror(err));
    if (err == ENOENT) return absl::NotFoundError(message);
    if (err == EACCES) return absl::PermissionDeniedError(message);
    return absl::FailedPreconditionError(message);
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return ApplyConfigYaml(path, buffer.str(), config);
}

}  // namespace fleet
