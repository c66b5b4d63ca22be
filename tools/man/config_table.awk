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
  # key | accepts | default | at run time | what it does
  if (n != 5) { print "config_table.awk: bad row: " $0 > "/dev/stderr"; exit 1 }
  gsub(/`/, "", cell[1])
  print ".TP"
  print ".B " roff(cell[1])
  print toupper(substr(cell[5], 1, 1)) roff(substr(cell[5], 2)) "."
  if (cell[2] == "-")  # a statistic (stats.NAME): read only
    print "A statistic: read with DepotMem_GetOption."
  else
    print "Accepts " roff(cell[2]) "; default " roff(cell[3]) \
          (cell[4] ~ /set/ ? "; can be changed while running with DepotMem_SetOption." : ".")
}
