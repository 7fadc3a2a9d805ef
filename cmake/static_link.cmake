# fleet_link_static(TARGET DEP): links executable TARGET against DEP (a target
# of ours) with every library of DEP's link closure taken from its static
# archive (lib*.a beside the shared one) where Debian ships one; libraries
# without an archive (libsystemd, glibc) stay shared. The C++ runtime is linked
# statically too, unused sections are dropped (--gc-sections) and the binary
# is not position independent.
#
# Why: the agent's resident memory is the product's promise. The kernel maps
# file pages in 64 KiB windows around every code page touched, so a big shared
# library (libgrpc alone: 5 MiB resident in the agent) costs far more than the
# code run, and each shared C++ library carries its own relocated (dirty,
# private) vtables and GOT. One static, non-PIE binary holds only the object
# files the agent uses, with no relocations to write at start: with 1,000
# units the agent's RSS went from 22.4 to 16.3 MiB with this alone.
#
# TARGET's own sources still compile against DEP's usage requirements (include
# dirs, definitions); only the link line is rebuilt. Not for sanitizer builds
# (ASan's runtime wants the shared C++ runtime): the caller keeps the ordinary
# dynamic link there.

# Appends to `out_var` the link items of `item` (a target, a genex-wrapped
# target, a path or a flag), depth first; our own static libraries first, then
# their dependencies. `visited_var` names a list of targets already walked.
function(_fleet_static_closure item out_var visited_var)
  set(out ${${out_var}})
  set(visited ${${visited_var}})
  # Private dependencies of static libraries arrive as $<LINK_ONLY:x>.
  if(item MATCHES "^\\$<LINK_ONLY:(.+)>$")
    set(item "${CMAKE_MATCH_1}")
  endif()
  # Platform conditions (absl: $<$<PLATFORM_ID:Darwin>:...>).
  if(item MATCHES "^\\$<\\$<PLATFORM_ID:([A-Za-z]+)>:(.*)>$")
    set(keep "${CMAKE_MATCH_2}")
    if(NOT CMAKE_MATCH_1 STREQUAL CMAKE_SYSTEM_NAME OR keep STREQUAL "")
      return()
    endif()
    set(item "${keep}")
  endif()
  if(item MATCHES "^\\$<")
    message(FATAL_ERROR "fleet_link_static: cannot resolve generator expression ${item}")
  endif()
  if(TARGET ${item})
    get_target_property(aliased ${item} ALIASED_TARGET)
    if(aliased)
      set(item ${aliased})
    endif()
    if(item IN_LIST visited)
      set(${out_var} ${out} PARENT_SCOPE)
      return()
    endif()
    list(APPEND visited ${item})
    get_target_property(type ${item} TYPE)
    get_target_property(imported ${item} IMPORTED)
    if(item STREQUAL "Threads::Threads")
      list(APPEND out -pthread)
    elseif(type STREQUAL "INTERFACE_LIBRARY")
      # Only its dependencies (below).
    elseif(NOT imported)
      if(NOT type STREQUAL "STATIC_LIBRARY")
        message(FATAL_ERROR "fleet_link_static: ${item} is a ${type}, not a static library")
      endif()
      list(APPEND out "$<TARGET_FILE:${item}>")
    else()
      get_target_property(location ${item} IMPORTED_LOCATION)
      if(NOT location)
        get_target_property(configs ${item} IMPORTED_CONFIGURATIONS)
        foreach(config IN LISTS configs)
          get_target_property(location ${item} IMPORTED_LOCATION_${config})
          if(location)
            break()
          endif()
        endforeach()
      endif()
      if(NOT location)
        message(FATAL_ERROR "fleet_link_static: no file for imported target ${item}")
      endif()
      _fleet_static_file(${location} file)
      list(APPEND out ${file})
    endif()
    get_target_property(deps ${item} INTERFACE_LINK_LIBRARIES)
    if(deps)
      foreach(dep IN LISTS deps)
        set(${out_var} ${out})
        set(${visited_var} ${visited})
        _fleet_static_closure(${dep} ${out_var} ${visited_var})
        set(out ${${out_var}})
        set(visited ${${visited_var}})
      endforeach()
    endif()
  elseif(item MATCHES "^/")
    _fleet_static_file(${item} file)
    list(APPEND out ${file})
  elseif(item MATCHES "^-l(.+)$" OR item MATCHES "^([A-Za-z0-9_+.][A-Za-z0-9_+.-]*)$")
    # -lfoo or a bare library name (dl, m, rt, re2): the archive if there is one.
    string(REGEX REPLACE "^-l" "" name "${item}")
    find_file(_fleet_archive_${name} lib${name}.a PATHS /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}
              NO_DEFAULT_PATH)
    # glibc's own archives (libdl.a, libm.a, librt.a) would mix a static and a
    # shared libc: those stay shared.
    if(_fleet_archive_${name} AND NOT name MATCHES "^(c|dl|m|rt|pthread)$")
      list(APPEND out ${_fleet_archive_${name}})
    else()
      list(APPEND out -l${name})
    endif()
  else()
    list(APPEND out ${item})  # a linker flag
  endif()
  set(${out_var} ${out} PARENT_SCOPE)
  set(${visited_var} ${visited} PARENT_SCOPE)
endfunction()

# Sets `out_var` to the static archive beside shared library `path`
# (/x/libfoo.so.1.2 -> /x/libfoo.a) if it exists, else to `path`.
function(_fleet_static_file path out_var)
  set(result ${path})
  if(path MATCHES "^(.*/lib[^/]+)\\.so(\\.[0-9.]+)?$")
    set(archive "${CMAKE_MATCH_1}.a")
    if(EXISTS ${archive})
      set(result ${archive})
    endif()
  endif()
  set(${out_var} ${result} PARENT_SCOPE)
endfunction()

function(fleet_link_static target dep)
  set(items "")
  set(visited "")
  _fleet_static_closure(${dep} items visited)
  list(REMOVE_DUPLICATES items)
  set(archives "")
  set(others "")
  foreach(item IN LISTS items)
    if(item MATCHES "\\.a$" OR item MATCHES "^\\$<TARGET_FILE:")
      list(APPEND archives ${item})
    else()
      list(APPEND others ${item})
    endif()
  endforeach()
  # The compile side: DEP's usage requirements without its link items.
  foreach(t IN LISTS visited)
    get_target_property(imported ${t} IMPORTED)
    get_target_property(type ${t} TYPE)
    # Imported targets' headers are in /usr/include, searched anyway.
    get_target_property(includes ${t} INTERFACE_INCLUDE_DIRECTORIES)
    if(includes AND NOT imported)
      target_include_directories(${target} PRIVATE ${includes})
    endif()
    get_target_property(definitions ${t} INTERFACE_COMPILE_DEFINITIONS)
    if(definitions)
      target_compile_definitions(${target} PRIVATE ${definitions})
    endif()
    if(NOT imported AND type STREQUAL "STATIC_LIBRARY")
      add_dependencies(${target} ${t})
    endif()
  endforeach()
  # One group: the archives refer to each other in every direction.
  target_link_libraries(${target} PRIVATE
    -Wl,--start-group ${archives} -Wl,--end-group ${others})
  target_compile_options(${target} PRIVATE -ffunction-sections -fdata-sections)
  target_link_options(${target} PRIVATE
    -static-libstdc++ -static-libgcc -no-pie -Wl,--gc-sections -Wl,--as-needed)
  set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE OFF)
endfunction()
