# Helpers shared by every folder's CMakeLists.txt.

# fleet_library(NAME SOURCES... [DEPS ...]): a static library of our own code
# (a header-only one when SOURCES is empty).
function(fleet_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  if(NOT ARG_SOURCES)
    add_library(${name} INTERFACE)
    target_include_directories(${name} INTERFACE ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
    target_link_libraries(${name} INTERFACE ${ARG_DEPS})
    return()
  endif()
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
  target_compile_options(${name} PRIVATE ${FLEET_WARNINGS})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
endfunction()

# fleet_binary(NAME SOURCES... [DEPS ...]): an installed executable.
function(fleet_binary name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_compile_options(${name} PRIVATE ${FLEET_WARNINGS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
  install(TARGETS ${name} RUNTIME DESTINATION bin)
endfunction()

# fleet_test(NAME LABEL unit|integration|e2e SOURCES... [DEPS ...] [TIMEOUT s]):
# a GoogleTest binary whose tests ctest runs one by one, labelled so the README's
# test command can pick unit, integration and e2e runs apart.
function(fleet_test name)
  cmake_parse_arguments(ARG "" "LABEL;TIMEOUT" "SOURCES;DEPS" ${ARGN})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 120)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_compile_options(${name} PRIVATE ${FLEET_WARNINGS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gmock GTest::gtest GTest::gtest_main)
  target_compile_definitions(${name} PRIVATE
    FLEET_SOURCE_DIR="${PROJECT_SOURCE_DIR}" FLEET_BINARY_DIR="${PROJECT_BINARY_DIR}")
  gtest_discover_tests(${name}
    PROPERTIES LABELS ${ARG_LABEL} TIMEOUT ${ARG_TIMEOUT}
    DISCOVERY_TIMEOUT 60)
endfunction()

# fleet_fuzzer(NAME SOURCES... [DEPS ...] [RUNS n] [SEEDS files...]): a
# libFuzzer target, built only with -DFLEET_FUZZ=ON and clang, part of the
# `fuzzers` target, and a ctest test (label fuzz) that runs it for a bounded
# number of inputs; with SEEDS a second test starts from those files.
function(fleet_fuzzer name)
  if(NOT FLEET_FUZZ)
    return()
  endif()
  cmake_parse_arguments(ARG "" "RUNS" "SOURCES;DEPS;SEEDS" ${ARGN})
  if(NOT ARG_RUNS)
    set(ARG_RUNS 200000)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_compile_options(${name} PRIVATE ${FLEET_WARNINGS} -fsanitize=fuzzer)
  target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
  add_dependencies(fuzzers ${name})
  add_test(NAME ${name} COMMAND ${name} -runs=${ARG_RUNS} -seed=1)
  set_tests_properties(${name} PROPERTIES LABELS fuzz TIMEOUT 900)
  if(ARG_SEEDS)
    # -seed_inputs reads the seeds without writing into the source tree.
    list(JOIN ARG_SEEDS "," seed_list)
    add_test(NAME ${name}_seeded COMMAND ${name} -runs=${ARG_RUNS} -seed=1 -seed_inputs=${seed_list})
    set_tests_properties(${name}_seeded PROPERTIES LABELS fuzz TIMEOUT 900)
  endif()
endfunction()
