# Turns the Markdown configuration reference printed by
# `topo --config-reference` into man(7) entries for depot(7).
function roff(s) {
  gsub(/\\/, "\\e", s)
  gsub(/-/, "\\-", s)
  while (match(s, /`[^`]*`/))
    s = substr(s, 1, RSTART - 1) "\\fB" substr(s, RSTART + 1, RLENGTH - 2) "\\fR" \
        substr(s, RSTART + RLENGTH)
  return s
}
NR <= 2 { next }  # the header row and its rule
{
  row = substr($0, 3, length($0) - 4)  # "| a | b |" -> "a | b"
  n = split(row, cell, / \| /)
  if (n != 4) { print "config_table.awk: bad row: " $0 > "/dev/stderr"; exit 1 }
  gsub(/`/, "", cell[1])
  print ".TP"
  print ".B " roff(cell[1])
  print toupper(substr(cell[4], 1, 1)) roff(substr(cell[4], 2)) "."
  print "Accepts " roff(cell[2]) "; default " roff(cell[3]) "."
}
