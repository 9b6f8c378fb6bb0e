# Every dependency is a Debian package, found with pkg-config where it ships a
# .pc file (mbedTLS 2.28 does not: plain find_library/find_path there).
find_package(PkgConfig REQUIRED)

function(lp2p_pkg name module)
  if(TARGET PkgConfig::${name})
    return()
  endif()
  pkg_check_modules(${name} REQUIRED IMPORTED_TARGET GLOBAL ${module})
  add_library(lp2p::${name} ALIAS PkgConfig::${name})
endfunction()

lp2p_pkg(sodium libsodium)
lp2p_pkg(protobuf-c libprotobuf-c)
lp2p_pkg(cares libcares)
lp2p_pkg(tomcrypt libtomcrypt)
lp2p_pkg(uv libuv)
lp2p_pkg(sqlite3 sqlite3)

if(NOT TARGET lp2p_mbedcrypto)
find_path(MBEDTLS_INCLUDE_DIR mbedtls/ecdsa.h REQUIRED)
find_library(MBEDCRYPTO_LIBRARY mbedcrypto REQUIRED)
add_library(lp2p_mbedcrypto INTERFACE IMPORTED GLOBAL)
set_target_properties(lp2p_mbedcrypto PROPERTIES
  INTERFACE_INCLUDE_DIRECTORIES ${MBEDTLS_INCLUDE_DIR}
  INTERFACE_LINK_LIBRARIES ${MBEDCRYPTO_LIBRARY})
add_library(lp2p::mbedcrypto ALIAS lp2p_mbedcrypto)
endif()
