# gateway/dashboard/dashboard.cmake — included by the top-level CMakeLists
# after bg_gateway exists: compiles the dashboard's files (this folder) into
# bg_gateway through a C file that embed.cmake generates in the build tree.
# Editing a file here regenerates it on the next build; no build step for
# the page itself (no bundler, no minifier).
set(BG_DASHBOARD_FILES index.html dashboard.css dashboard.js)

set(_bg_dash_dir "${CMAKE_CURRENT_LIST_DIR}")
set(_bg_dash_out "${CMAKE_BINARY_DIR}/generated/dashboard_assets.c")
set(_bg_dash_deps "${_bg_dash_dir}/embed.cmake")
foreach(_f IN LISTS BG_DASHBOARD_FILES)
  list(APPEND _bg_dash_deps "${_bg_dash_dir}/${_f}")
endforeach()
string(REPLACE ";" "," _bg_dash_names "${BG_DASHBOARD_FILES}")

add_custom_command(
  OUTPUT "${_bg_dash_out}"
  COMMAND "${CMAKE_COMMAND}" "-DBG_EMBED_DIR=${_bg_dash_dir}" "-DBG_EMBED_NAMES=${_bg_dash_names}"
          "-DBG_EMBED_OUT=${_bg_dash_out}" -P "${_bg_dash_dir}/embed.cmake"
  DEPENDS ${_bg_dash_deps}
  COMMENT "Embedding the dashboard (gateway/dashboard)"
  VERBATIM)
target_sources(bg_gateway PRIVATE "${_bg_dash_out}")
