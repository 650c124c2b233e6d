# run_expect.cmake -- run one program and judge it by its exit code and its
# output together: CTest's PASS_REGULAR_EXPRESSION alone ignores the exit
# code, so a program that crashes after printing the expected line would pass.
#
#   cmake "-DEXPECT=regex1;regex2" -P run_expect.cmake -- PROGRAM ARGS...
#
# Passes when PROGRAM exits 0 and its standard output matches every regex in
# EXPECT; prints what it got either way.
set(cmd)
set(seen_sep OFF)
math(EXPR last "${CMAKE_ARGC} - 1")
foreach(i RANGE 0 ${last})
  if(seen_sep)
    list(APPEND cmd "${CMAKE_ARGV${i}}")
  elseif("${CMAKE_ARGV${i}}" STREQUAL "--")
    set(seen_sep ON)
  endif()
endforeach()
if(NOT cmd)
  message(FATAL_ERROR "run_expect: no program after --")
endif()
execute_process(COMMAND ${cmd} OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
message("${out}")
if(err)
  message("--- stderr\n${err}")
endif()
if(NOT "${rc}" STREQUAL "0")
  message(FATAL_ERROR "run_expect: ${cmd} ended with '${rc}', not 0")
endif()
foreach(re IN LISTS EXPECT)
  if(NOT out MATCHES "${re}")
    message(FATAL_ERROR "run_expect: the output does not match '${re}'")
  endif()
endforeach()
