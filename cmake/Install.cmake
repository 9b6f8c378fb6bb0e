# Install: headers, both libraries, lp2p.pc and a CMake package (find_package(lp2p)).
include(CMakePackageConfigHelpers)

install(DIRECTORY include/lp2p DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.h")
install(TARGETS lp2p lp2p_static EXPORT lp2pTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

# The static library's link interface names the private imported targets; the
# package config re-creates them (lp2p::sodium etc.) before loading targets.
install(EXPORT lp2pTargets NAMESPACE lp2p:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/lp2p)
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/lp2pConfig.cmake.in
  ${CMAKE_BINARY_DIR}/lp2pConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/lp2p)
write_basic_package_version_file(${CMAKE_BINARY_DIR}/lp2pConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_BINARY_DIR}/lp2pConfig.cmake ${CMAKE_BINARY_DIR}/lp2pConfigVersion.cmake
  ${CMAKE_SOURCE_DIR}/cmake/Dependencies.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/lp2p)

file(RELATIVE_PATH LP2P_PC_RELPREFIX "/_/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/_")
configure_file(${CMAKE_SOURCE_DIR}/cmake/lp2p.pc.in ${CMAKE_BINARY_DIR}/lp2p.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/lp2p.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
