# Writes the text file IN into the C source OUT as `const char SYMBOL[]`.
# Run by the build (cmake -P) so that the embedded default config is always
# the same text as configs/default.ini.
file(READ "${IN}" content)
string(REPLACE "\\" "\\\\" content "${content}")
string(REPLACE "\"" "\\\"" content "${content}")
string(REPLACE "\n" "\\n\"\n    \"" content "${content}")
file(WRITE "${OUT}.tmp"
  "/* Generated from ${IN} by src/cli/embed_text.cmake; do not edit. */\n"
  "const char ${SYMBOL}[] =\n    \"${content}\";\n")
file(RENAME "${OUT}.tmp" "${OUT}")
