#pragma once

// One file per fleetctl verb; this table maps each verb to the function that
// defines its subcommand. Order = order in `fleetctl --help`.

#include "fleetctl/context.h"

namespace fleet::ctl {

CommandRunner DefineSubmit(CLI::App& app);
CommandRunner DefineLoad(CLI::App& app);
CommandRunner DefineStart(CLI::App& app);
CommandRunner DefineStop(CLI::App& app);
CommandRunner DefineRestart(CLI::App& app);
CommandRunner DefineUnload(CLI::App& app);
CommandRunner DefineDestroy(CLI::App& app);
CommandRunner DefineCat(CLI::App& app);
CommandRunner DefineListUnits(CLI::App& app);
CommandRunner DefineListUnitFiles(CLI::App& app);
CommandRunner DefineListMachines(CLI::App& app);
CommandRunner DefineStatus(CLI::App& app);
CommandRunner DefineJournal(CLI::App& app);
CommandRunner DefineVerify(CLI::App& app);
CommandRunner DefineSsh(CLI::App& app);
CommandRunner DefineVersion(CLI::App& app);
CommandRunner DefineHelp(CLI::App& app);

inline constexpr CommandDefiner kCommands[] = {
    DefineSubmit,   DefineLoad,      DefineStart,         DefineStop,
    DefineRestart,  DefineUnload,    DefineDestroy,       DefineCat,
    DefineListUnits, DefineListUnitFiles, DefineListMachines, DefineStatus,
    DefineJournal,  DefineVerify,    DefineSsh,           DefineVersion,
    DefineHelp,
};

// Flags of the commands that wait for agents: --block-attempts, --no-block.
struct BlockFlags {
  int block_attempts = 0;
  bool no_block = false;
  void Add(CLI::App& command);
};

}  // namespace fleet::ctl
