# Writes a C file holding every migration as {name, sql}, in file-name order.
# Inputs: OUT (the .c file), SYMBOL (array name), FILES (|-separated .sql paths: a ';' would
# split the command line).
set(body "/* Generated at build time from src/store/migrations: do not edit. */\n")
string(APPEND body "#include \"store/migrations.h\"\n")
set(entries "")
string(REPLACE "|" ";" FILES "${FILES}")
foreach(f ${FILES})
  get_filename_component(name ${f} NAME)
  file(READ ${f} hex HEX)
  string(REGEX REPLACE "(..)" "\\\\x\\1" escaped "${hex}")
  string(MAKE_C_IDENTIFIER ${name} id)
  string(APPEND body "static const char ${id}[] = \"${escaped}\";\n")
  string(APPEND entries "    {\"${name}\", ${id}},\n")
endforeach()
string(APPEND body "const struct migration ${SYMBOL}[] = {\n${entries}    {0, 0}};\n")
file(WRITE ${OUT} "${body}")
