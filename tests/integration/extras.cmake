# Real programs under libarena-preload.so (label extras): python3, sort(1),
# our multi-threaded mt_prog and the C-library contract checker, with a real
# daemon from the harness and with none. Not under sanitizers: a sanitized
# libarena-preload.so cannot be preloaded into unsanitized programs (the
# sanitizer runtime must come first and brings its own malloc).
if(ARENA_SANITIZE)
  message(STATUS "extras: preload integration tests skipped under ARENA_SANITIZE")
  return()
endif()

add_executable(mt_prog mt_prog.c)
target_link_libraries(mt_prog PRIVATE Threads::Threads)

add_executable(test_preload_api test_preload_api.c)
# Keep every malloc call a real call (no folding of malloc/free pairs).
target_compile_options(test_preload_api PRIVATE -fno-builtin)
target_link_libraries(test_preload_api PRIVATE Threads::Threads ${CMAKE_DL_LIBS})
set_target_properties(mt_prog test_preload_api PROPERTIES
  RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)

find_package(Python3 COMPONENTS Interpreter)
add_executable(test_preload test_preload.c)
target_link_libraries(test_preload PRIVATE PkgConfig::CHECK arena_test_harness Threads::Threads)
target_compile_definitions(test_preload PRIVATE
  PRELOAD_PATH="$<TARGET_FILE:arena-preload>"
  MT_PROG_PATH="$<TARGET_FILE:mt_prog>"
  PRELOAD_API_PATH="$<TARGET_FILE:test_preload_api>"
  $<$<BOOL:${Python3_FOUND}>:PYTHON3_PATH="${Python3_EXECUTABLE}">)
set_target_properties(test_preload PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_dependencies(test_preload arena-preload mt_prog test_preload_api)
if(TARGET arenad)
  add_dependencies(test_preload arenad)
endif()
add_test(NAME test_preload COMMAND test_preload)
set_tests_properties(test_preload PROPERTIES LABELS "integration;extras" TIMEOUT 600)
