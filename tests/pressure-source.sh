# tests/pressure-source.sh: sourced by the e2e and reliability runners. pressure_source_here
# succeeds when this machine offers the trim policy `pressure` something to read, by the
# plugin's own search (policies/trim_pressure.c): /proc/pressure/memory readable, or memory files
# of this process's cgroup (v2: under /sys/fs/cgroup or /sys/fs/cgroup/unified, or at the mount
# itself; v1: a group other than the root one, or the mount itself). Without either the plugin
# says so in one line at start-up, which the suites' empty-stderr rules refuse: they leave
# conf/trim-pressure.ini out, saying why, and the e2e test pressure_files[none] covers that case.
pressure_source_here() {
    head -c1 /proc/pressure/memory >/dev/null 2>&1 && return 0
    local p d
    p=$(sed -n 's/^0:://p' /proc/self/cgroup 2>/dev/null)
    if [[ -n $p ]]; then
        [[ $p == / ]] && p=
        for d in "/sys/fs/cgroup$p" "/sys/fs/cgroup/unified$p" /sys/fs/cgroup /sys/fs/cgroup/unified; do
            [[ -r $d/memory.current ]] && return 0
        done
    fi
    p=$(sed -n 's/^[0-9]*:\([^:]*,\)\{0,1\}memory\(,[^:]*\)\{0,1\}:\(.*\)$/\3/p' /proc/self/cgroup 2>/dev/null)
    [[ -n $p && $p != / && ( -r /sys/fs/cgroup/memory$p/memory.usage_in_bytes ||
        -r /sys/fs/cgroup/memory/memory.usage_in_bytes ) ]]
}
