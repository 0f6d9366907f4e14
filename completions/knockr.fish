# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_knockr_global_optspecs
    string join \n p/port= d/delay= t/timeout= resolve-timeout= n/network= u/udp mode= source= interface= retry= 4/ipv4 6/ipv6 v/verbose dry-run check= all-addresses every= q/quiet json color= c/config= h/help V/version
end

function __fish_knockr_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_knockr_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_knockr_using_subcommand
    set -l cmd (__fish_knockr_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c knockr -n "__fish_knockr_needs_command" -s p -l port -d 'Knock PORT[:tcp|udp] or SIZE:icmp (repeatable, or a comma list); targets become hosts' -r
complete -c knockr -n "__fish_knockr_needs_command" -s d -l delay -d 'Pause between knocks on one host, 0s to 1m, e.g. 200ms or 1s (bare number: ms) [default: 200ms]' -r
complete -c knockr -n "__fish_knockr_needs_command" -s t -l timeout -d 'How long to wait for an answer to each knock, 0s to 1m [default: 200ms]' -r
complete -c knockr -n "__fish_knockr_needs_command" -l resolve-timeout -d 'How long DNS may take for the host names, from the start of the run, 1ms to 1m (names in /etc/hosts never wait) [default: the profiles\' resolve_timeout, else 5s]' -r
complete -c knockr -n "__fish_knockr_needs_command" -s n -l network -d 'Protocol for ports given without one' -r -f -a "tcp\t'A TCP SYN (a connection attempt)'
udp\t'One UDP datagram'"
complete -c knockr -n "__fish_knockr_needs_command" -l mode -d 'How TCP knocks are sent: a bare SYN, or a full connect (for networks whose proxies swallow bare SYNs) [default: syn]' -r -f -a "syn\t'One SYN; the socket is abandoned before the kernel would retransmit it'
connect\t'A full connect (the kernel may retransmit), for networks whose proxies swallow bare SYNs'"
complete -c knockr -n "__fish_knockr_needs_command" -l source -d 'Send the knocks and the check from this address of this machine (multi-homed machines, VPNs)' -r
complete -c knockr -n "__fish_knockr_needs_command" -l interface -d 'Send the knocks and the check through this interface of this machine (SO_BINDTODEVICE)' -r
complete -c knockr -n "__fish_knockr_needs_command" -l retry -d 'When the check finds the port closed, knock again, up to N (at most 10) more times (waiting 1s, 2s, 4s, ... up to 8s between rounds)' -r
complete -c knockr -n "__fish_knockr_needs_command" -l check -d 'After the last knock, check that this TCP port accepts connections' -r
complete -c knockr -n "__fish_knockr_needs_command" -l every -d 'Knock again every DURATION (1s to 24h) until stopped (SIGINT/SIGTERM stop it at once, even mid-round), and at once when this machine\'s source address towards the targets changes' -r
complete -c knockr -n "__fish_knockr_needs_command" -l color -d 'Colour in the summary: auto (on a terminal, unless NO_COLOR is set), always, never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c knockr -n "__fish_knockr_needs_command" -s c -l config -d 'Profiles file [default: ~/.config/knockr/profiles.toml]' -r -F
complete -c knockr -n "__fish_knockr_needs_command" -s u -l udp -d 'Ports given without a protocol are UDP (the C knock\'s -u; as -n udp)'
complete -c knockr -n "__fish_knockr_needs_command" -s 4 -l ipv4 -d 'Use IPv4 addresses only'
complete -c knockr -n "__fish_knockr_needs_command" -s 6 -l ipv6 -d 'Use IPv6 addresses only'
complete -c knockr -n "__fish_knockr_needs_command" -s v -l verbose -d 'Print each knock as it is sent, on stderr'
complete -c knockr -n "__fish_knockr_needs_command" -l dry-run -d 'Resolve and show what would be sent, but send nothing (and connect nothing)'
complete -c knockr -n "__fish_knockr_needs_command" -l all-addresses -d 'Knock every address of each host, not only the one ssh would use'
complete -c knockr -n "__fish_knockr_needs_command" -s q -s s -l quiet -d 'Print nothing but errors; the exit status tells the result (-s as the Go knockr\'s silent flag)'
complete -c knockr -n "__fish_knockr_needs_command" -l json -d 'Print the results as one JSON document on stdout'
complete -c knockr -n "__fish_knockr_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c knockr -n "__fish_knockr_needs_command" -s V -l version -d 'Print version'
complete -c knockr -n "__fish_knockr_needs_command" -a "connect" -d 'Knock a profile (or with -p a host), wait until PORT answers, then relay stdin/stdout to it (for ssh: ProxyCommand knockr connect %n)'
complete -c knockr -n "__fish_knockr_needs_command" -a "list" -d 'List the profiles in the profiles file, one a line'
complete -c knockr -n "__fish_knockr_needs_command" -a "completions" -d 'Print a shell completion script'
complete -c knockr -n "__fish_knockr_needs_command" -a "man" -d 'Print the man page knockr(1) (roff), or write every page into a directory'
complete -c knockr -n "__fish_knockr_needs_command" -a "knockd" -d 'Run the knock server: watch traffic, match knock sequences, run commands'
complete -c knockr -n "__fish_knockr_needs_command" -a "secret" -d 'Shared secrets for time-based knock sequences (docs/otp-sequences.md)'
complete -c knockr -n "__fish_knockr_needs_command" -a "routeros" -d 'MikroTik RouterOS helpers'
complete -c knockr -n "__fish_knockr_needs_command" -a "nft" -d 'Linux nftables helpers'
complete -c knockr -n "__fish_knockr_needs_command" -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c knockr -n "__fish_knockr_using_subcommand connect" -s p -l port -d 'Knock PORT[:tcp|udp] or SIZE:icmp (repeatable, or a comma list); targets become hosts' -r
complete -c knockr -n "__fish_knockr_using_subcommand connect" -s d -l delay -d 'Pause between knocks on one host, 0s to 1m, e.g. 200ms or 1s (bare number: ms) [default: 200ms]' -r
complete -c knockr -n "__fish_knockr_using_subcommand connect" -s t -l timeout -d 'How long to wait for an answer to each knock, 0s to 1m [default: 200ms]' -r
complete -c knockr -n "__fish_knockr_using_subcommand connect" -l resolve-timeout -d 'How long DNS may take for the host names, from the start of the run, 1ms to 1m (names in /etc/hosts never wait) [default: the profiles\' resolve_timeout, else 5s]' -r
complete -c knockr -n "__fish_knockr_using_subcommand connect" -s n -l network -d 'Protocol for ports given without one' -r -f -a "tcp\t'A TCP SYN (a connection attempt)'
udp\t'One UDP datagram'"
complete -c knockr -n "__fish_knockr_using_subcommand connect" -l mode -d 'How TCP knocks are sent: a bare SYN, or a full connect (for networks whose proxies swallow bare SYNs) [default: syn]' -r -f -a "syn\t'One SYN; the socket is abandoned before the kernel would retransmit it'
connect\t'A full connect (the kernel may retransmit), for networks whose proxies swallow bare SYNs'"
complete -c knockr -n "__fish_knockr_using_subcommand connect" -l source -d 'Send the knocks and the check from this address of this machine (multi-homed machines, VPNs)' -r
complete -c knockr -n "__fish_knockr_using_subcommand connect" -l interface -d 'Send the knocks and the check through this interface of this machine (SO_BINDTODEVICE)' -r
complete -c knockr -n "__fish_knockr_using_subcommand connect" -l retry -d 'When the check finds the port closed, knock again, up to N (at most 10) more times (waiting 1s, 2s, 4s, ... up to 8s between rounds)' -r
complete -c knockr -n "__fish_knockr_using_subcommand connect" -s c -l config -d 'Profiles file [default: $KNOCKR_CONFIG, else ~/.config/knockr/profiles.toml]' -r -F
complete -c knockr -n "__fish_knockr_using_subcommand connect" -s u -l udp -d 'Ports given without a protocol are UDP (the C knock\'s -u; as -n udp)'
complete -c knockr -n "__fish_knockr_using_subcommand connect" -s 4 -l ipv4 -d 'Use IPv4 addresses only'
complete -c knockr -n "__fish_knockr_using_subcommand connect" -s 6 -l ipv6 -d 'Use IPv6 addresses only'
complete -c knockr -n "__fish_knockr_using_subcommand connect" -s v -l verbose -d 'Print each knock as it is sent, on stderr'
complete -c knockr -n "__fish_knockr_using_subcommand connect" -l dry-run -d 'Resolve and show what would be sent, but send nothing (and connect nothing)'
complete -c knockr -n "__fish_knockr_using_subcommand connect" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c knockr -n "__fish_knockr_using_subcommand list" -s c -l config -d 'Profiles file [default: $KNOCKR_CONFIG, else ~/.config/knockr/profiles.toml]' -r -F
complete -c knockr -n "__fish_knockr_using_subcommand list" -s h -l help -d 'Print help'
complete -c knockr -n "__fish_knockr_using_subcommand completions" -s c -l config -d 'Profiles file [default: ~/.config/knockr/profiles.toml]' -r -F
complete -c knockr -n "__fish_knockr_using_subcommand completions" -s h -l help -d 'Print help'
complete -c knockr -n "__fish_knockr_using_subcommand man" -l dir -d 'Write every page into DIR: knockr(1), one per subcommand, and the files\' knockr-profiles(5) and knockr-knockd.toml(5)' -r -F
complete -c knockr -n "__fish_knockr_using_subcommand man" -s c -l config -d 'Profiles file [default: ~/.config/knockr/profiles.toml]' -r -F
complete -c knockr -n "__fish_knockr_using_subcommand man" -s h -l help -d 'Print help'
complete -c knockr -n "__fish_knockr_using_subcommand knockd" -s c -l config -d 'Server configuration: a knockr TOML file or a classic knockd.conf (told apart by content)' -r -F
complete -c knockr -n "__fish_knockr_using_subcommand knockd" -s i -l interface -d 'Capture on this interface ("any": all of them); repeatable; replaces the config\'s' -r
complete -c knockr -n "__fish_knockr_using_subcommand knockd" -l state-file -d 'Keep open knockers and used time-based sequences in this file; replaces the config\'s state_file (--read and --dry-run use none)' -r -F
complete -c knockr -n "__fish_knockr_using_subcommand knockd" -l convert -d 'Print a classic knockd.conf as knockr\'s TOML (the same doors, commands and timeouts, with comments on what TOML adds), and exit' -r -F
complete -c knockr -n "__fish_knockr_using_subcommand knockd" -l read -d 'Replay a capture file (pcap) instead of capturing live; its timestamps are the clock' -r -F
complete -c knockr -n "__fish_knockr_using_subcommand knockd" -l check -d 'Validate the configuration as a start would (files, state file, kernel filter), print the doors and warnings, and exit: 0 only if it would start'
complete -c knockr -n "__fish_knockr_using_subcommand knockd" -l dry-run -d 'Print the commands instead of running them (one-time sequence files are not changed)'
complete -c knockr -n "__fish_knockr_using_subcommand knockd" -l json -d 'Log one JSON object per line instead of knockd-style lines; with --check, print the configuration as one JSON document'
complete -c knockr -n "__fish_knockr_using_subcommand knockd" -s v -l verbose -d 'Also log debug lines'
complete -c knockr -n "__fish_knockr_using_subcommand knockd" -s h -l help -d 'Print help'
complete -c knockr -n "__fish_knockr_using_subcommand secret; and not __fish_seen_subcommand_from new help" -s c -l config -d 'Profiles file [default: ~/.config/knockr/profiles.toml]' -r -F
complete -c knockr -n "__fish_knockr_using_subcommand secret; and not __fish_seen_subcommand_from new help" -s h -l help -d 'Print help'
complete -c knockr -n "__fish_knockr_using_subcommand secret; and not __fish_seen_subcommand_from new help" -f -a "new" -d 'Print a fresh random 160-bit secret, in base32 and in hex (the same bytes)'
complete -c knockr -n "__fish_knockr_using_subcommand secret; and not __fish_seen_subcommand_from new help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c knockr -n "__fish_knockr_using_subcommand secret; and __fish_seen_subcommand_from new" -s c -l config -d 'Profiles file [default: ~/.config/knockr/profiles.toml]' -r -F
complete -c knockr -n "__fish_knockr_using_subcommand secret; and __fish_seen_subcommand_from new" -s h -l help -d 'Print help'
complete -c knockr -n "__fish_knockr_using_subcommand secret; and __fish_seen_subcommand_from help" -f -a "new" -d 'Print a fresh random 160-bit secret, in base32 and in hex (the same bytes)'
complete -c knockr -n "__fish_knockr_using_subcommand secret; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and not __fish_seen_subcommand_from rules check apply help" -s c -l config -d 'Profiles file [default: ~/.config/knockr/profiles.toml]' -r -F
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and not __fish_seen_subcommand_from rules check apply help" -s h -l help -d 'Print help'
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and not __fish_seen_subcommand_from rules check apply help" -f -a "rules" -d 'Print a RouterOS script that makes the router detect a knock sequence by itself (staged address lists), opening ports to whoever completes it'
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and not __fish_seen_subcommand_from rules check apply help" -f -a "check" -d 'Check that knockd can use each router of each [door.routeros]: reachable, its certificate, credentials, and the list readable and writable (exit 0 when every router is ready, 1 otherwise)'
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and not __fish_seen_subcommand_from rules check apply help" -f -a "apply" -d 'Install the rules of `routeros rules` on one or more routers over the REST API, or take them out with --remove; a second run changes nothing (exit 0 when every router ends as wanted, 1 if one failed, 2 on a usage error)'
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and not __fish_seen_subcommand_from rules check apply help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and __fish_seen_subcommand_from rules" -l sequence -d 'The sequence instead of a profile: PORT[:tcp|udp] or SIZE:icmp, repeatable or a comma list' -r
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and __fish_seen_subcommand_from rules" -l wan -d 'Interface list the knocks arrive on' -r
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and __fish_seen_subcommand_from rules" -l protect -d 'Ports to open to a knocker: PORT[-PORT][:tcp|udp] (tcp unless told), e.g. 22,8291,51820:udp,60000-60010' -r
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and __fish_seen_subcommand_from rules" -l list -d 'Address list a knocker lands on' -r
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and __fish_seen_subcommand_from rules" -l timeout -d 'How long a knocker stays on the list (the router removes it itself)' -r
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and __fish_seen_subcommand_from rules" -l stage-timeout -d 'Time allowed between two knocks [default: 10s, or 4x the profile\'s delay if longer]' -r
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and __fish_seen_subcommand_from rules" -l block-for -d 'How long a source that began the sequence and then sent anything else (a scan) is blocked from knocking' -r
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and __fish_seen_subcommand_from rules" -l place-before -d 'Comment of the input rule the accept goes before [default: the default configuration\'s drop rule if there is one, else the top of the input chain]' -r
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and __fish_seen_subcommand_from rules" -l tag -l name -d 'Tag of the chain, lists and comments, by which importing again (or apply) replaces the rules and --undo (or apply --remove) finds them; one per knock door on a router [default: knockr-PROFILE, or knockr]' -r
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and __fish_seen_subcommand_from rules" -l family -d 'Rules under /ip (ipv4), /ipv6 (ipv6), or both (any): knockers of either family' -r -f -a "any\t'Rules for both /ip and /ipv6, so knockers of either family are seen'
ipv4\t'Rules under /ip only'
ipv6\t'Rules under /ipv6 only'"
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and __fish_seen_subcommand_from rules" -s c -l config -d 'Profiles file [default: $KNOCKR_CONFIG, else ~/.config/knockr/profiles.toml]' -r -F
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and __fish_seen_subcommand_from rules" -l allow-weak -d 'Generate a sequence a port scan completes easily (one knock, or one protocol in ascending or descending order), with a warning, instead of refusing it'
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and __fish_seen_subcommand_from rules" -l undo -d 'Print the script that removes the rules and lists of this tag instead'
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and __fish_seen_subcommand_from rules" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and __fish_seen_subcommand_from check" -s c -l config -d 'The knockd configuration whose [door.routeros] tables to check' -r -F
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and __fish_seen_subcommand_from check" -s h -l help -d 'Print help'
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and __fish_seen_subcommand_from apply" -l sequence -d 'The sequence instead of a profile: PORT[:tcp|udp] or SIZE:icmp, repeatable or a comma list' -r
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and __fish_seen_subcommand_from apply" -l wan -d 'Interface list the knocks arrive on' -r
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and __fish_seen_subcommand_from apply" -l protect -d 'Ports to open to a knocker: PORT[-PORT][:tcp|udp] (tcp unless told), e.g. 22,8291,51820:udp,60000-60010' -r
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and __fish_seen_subcommand_from apply" -l list -d 'Address list a knocker lands on' -r
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and __fish_seen_subcommand_from apply" -l timeout -d 'How long a knocker stays on the list (the router removes it itself)' -r
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and __fish_seen_subcommand_from apply" -l stage-timeout -d 'Time allowed between two knocks [default: 10s, or 4x the profile\'s delay if longer]' -r
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and __fish_seen_subcommand_from apply" -l block-for -d 'How long a source that began the sequence and then sent anything else (a scan) is blocked from knocking' -r
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and __fish_seen_subcommand_from apply" -l place-before -d 'Comment of the input rule the accept goes before [default: the default configuration\'s drop rule if there is one, else the top of the input chain]' -r
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and __fish_seen_subcommand_from apply" -l tag -l name -d 'Tag of the chain, lists and comments, by which importing again (or apply) replaces the rules and --undo (or apply --remove) finds them; one per knock door on a router [default: knockr-PROFILE, or knockr]' -r
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and __fish_seen_subcommand_from apply" -l family -d 'Rules under /ip (ipv4), /ipv6 (ipv6), or both (any): knockers of either family' -r -f -a "any\t'Rules for both /ip and /ipv6, so knockers of either family are seen'
ipv4\t'Rules under /ip only'
ipv6\t'Rules under /ipv6 only'"
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and __fish_seen_subcommand_from apply" -l door -d 'The door of -c\'s knockd configuration whose [door.routeros] names the routers, the user, the password and the certificate check' -r
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and __fish_seen_subcommand_from apply" -s c -l config -d 'The knockd configuration that --door names a door of' -r -F
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and __fish_seen_subcommand_from apply" -l url -d 'A router, as http(s)://HOST[:PORT] (repeatable)' -r
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and __fish_seen_subcommand_from apply" -l user -d 'The RouterOS user (its group needs read,write,api,rest-api)' -r
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and __fish_seen_subcommand_from apply" -l password-file -d 'File whose first line is the password (mode 600, yours or root\'s)' -r -F
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and __fish_seen_subcommand_from apply" -l password-env -d 'Environment variable holding the password' -r
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and __fish_seen_subcommand_from apply" -l ca-file -d 'Trust only this CA (PEM) for the routers\' certificates' -r -F
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and __fish_seen_subcommand_from apply" -l fingerprint -d 'Trust the certificate with this SHA-256 fingerprint (`routeros check` shows it)' -r
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and __fish_seen_subcommand_from apply" -l retry -d 'How long each request to a router is retried while it fails (5xx, unreachable)' -r
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and __fish_seen_subcommand_from apply" -l profiles -d 'Profiles file for PROFILE [default: $KNOCKR_CONFIG, else ~/.config/knockr/profiles.toml]' -r -F
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and __fish_seen_subcommand_from apply" -l allow-weak -d 'Generate a sequence a port scan completes easily (one knock, or one protocol in ascending or descending order), with a warning, instead of refusing it'
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and __fish_seen_subcommand_from apply" -l remove -d 'Take out every rule and stage list entry of the tag instead'
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and __fish_seen_subcommand_from apply" -l dry-run -d 'Print what would change on each router, change nothing'
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and __fish_seen_subcommand_from apply" -l insecure -d 'Do not check the certificate at all (anyone on the path can take the password)'
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and __fish_seen_subcommand_from apply" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and __fish_seen_subcommand_from help" -f -a "rules" -d 'Print a RouterOS script that makes the router detect a knock sequence by itself (staged address lists), opening ports to whoever completes it'
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and __fish_seen_subcommand_from help" -f -a "check" -d 'Check that knockd can use each router of each [door.routeros]: reachable, its certificate, credentials, and the list readable and writable (exit 0 when every router is ready, 1 otherwise)'
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and __fish_seen_subcommand_from help" -f -a "apply" -d 'Install the rules of `routeros rules` on one or more routers over the REST API, or take them out with --remove; a second run changes nothing (exit 0 when every router ends as wanted, 1 if one failed, 2 on a usage error)'
complete -c knockr -n "__fish_knockr_using_subcommand routeros; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c knockr -n "__fish_knockr_using_subcommand nft; and not __fish_seen_subcommand_from rules help" -s c -l config -d 'Profiles file [default: ~/.config/knockr/profiles.toml]' -r -F
complete -c knockr -n "__fish_knockr_using_subcommand nft; and not __fish_seen_subcommand_from rules help" -s h -l help -d 'Print help'
complete -c knockr -n "__fish_knockr_using_subcommand nft; and not __fish_seen_subcommand_from rules help" -f -a "rules" -d 'Print an nftables ruleset (table inet knockr) that makes the kernel detect a knock sequence by itself (timed sets), opening ports to whoever completes it; load it with nft -f (again to replace it)'
complete -c knockr -n "__fish_knockr_using_subcommand nft; and not __fish_seen_subcommand_from rules help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c knockr -n "__fish_knockr_using_subcommand nft; and __fish_seen_subcommand_from rules" -l sequence -d 'The sequence instead of a profile: PORT[:tcp|udp] or SIZE:icmp, repeatable or a comma list' -r
complete -c knockr -n "__fish_knockr_using_subcommand nft; and __fish_seen_subcommand_from rules" -l protect -d 'Ports to open to a knocker: PORT[-PORT][:tcp|udp] (tcp unless told), e.g. 22,51820:udp,60000-60010' -r
complete -c knockr -n "__fish_knockr_using_subcommand nft; and __fish_seen_subcommand_from rules" -l interface -d 'Only knocks arriving on this interface count [default: any interface]' -r
complete -c knockr -n "__fish_knockr_using_subcommand nft; and __fish_seen_subcommand_from rules" -l table -d 'Name of the table (table inet NAME), which loading again replaces' -r
complete -c knockr -n "__fish_knockr_using_subcommand nft; and __fish_seen_subcommand_from rules" -l set -d 'Base name of the sets a knocker lands in (NAME_v4 and NAME_v6)' -r
complete -c knockr -n "__fish_knockr_using_subcommand nft; and __fish_seen_subcommand_from rules" -l timeout -d 'How long a knocker stays in the set (the kernel removes it itself)' -r
complete -c knockr -n "__fish_knockr_using_subcommand nft; and __fish_seen_subcommand_from rules" -l stage-timeout -d 'Time allowed between two knocks [default: 10s, or 4x the profile\'s delay if longer]' -r
complete -c knockr -n "__fish_knockr_using_subcommand nft; and __fish_seen_subcommand_from rules" -l block-for -d 'How long a source that began the sequence and then sent anything else (a scan) is blocked from knocking' -r
complete -c knockr -n "__fish_knockr_using_subcommand nft; and __fish_seen_subcommand_from rules" -l family -d 'Sets and rules for ipv4, ipv6, or both (any)' -r -f -a "any\t'Rules for both /ip and /ipv6, so knockers of either family are seen'
ipv4\t'Rules under /ip only'
ipv6\t'Rules under /ipv6 only'"
complete -c knockr -n "__fish_knockr_using_subcommand nft; and __fish_seen_subcommand_from rules" -s c -l config -d 'Profiles file [default: $KNOCKR_CONFIG, else ~/.config/knockr/profiles.toml]' -r -F
complete -c knockr -n "__fish_knockr_using_subcommand nft; and __fish_seen_subcommand_from rules" -l allow-weak -d 'Generate a sequence a port scan completes easily (one knock, or one protocol in ascending or descending order), with a warning, instead of refusing it'
complete -c knockr -n "__fish_knockr_using_subcommand nft; and __fish_seen_subcommand_from rules" -l for-knockd -d 'Print only what a [door.nftables] door needs: the table, its two sets, and the input chain that opens the --protect ports to the addresses in them (knockd detects the knock, so no sequence is needed)'
complete -c knockr -n "__fish_knockr_using_subcommand nft; and __fish_seen_subcommand_from rules" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c knockr -n "__fish_knockr_using_subcommand nft; and __fish_seen_subcommand_from help" -f -a "rules" -d 'Print an nftables ruleset (table inet knockr) that makes the kernel detect a knock sequence by itself (timed sets), opening ports to whoever completes it; load it with nft -f (again to replace it)'
complete -c knockr -n "__fish_knockr_using_subcommand nft; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c knockr -n "__fish_knockr_using_subcommand help; and not __fish_seen_subcommand_from connect list completions man knockd secret routeros nft help" -f -a "connect" -d 'Knock a profile (or with -p a host), wait until PORT answers, then relay stdin/stdout to it (for ssh: ProxyCommand knockr connect %n)'
complete -c knockr -n "__fish_knockr_using_subcommand help; and not __fish_seen_subcommand_from connect list completions man knockd secret routeros nft help" -f -a "list" -d 'List the profiles in the profiles file, one a line'
complete -c knockr -n "__fish_knockr_using_subcommand help; and not __fish_seen_subcommand_from connect list completions man knockd secret routeros nft help" -f -a "completions" -d 'Print a shell completion script'
complete -c knockr -n "__fish_knockr_using_subcommand help; and not __fish_seen_subcommand_from connect list completions man knockd secret routeros nft help" -f -a "man" -d 'Print the man page knockr(1) (roff), or write every page into a directory'
complete -c knockr -n "__fish_knockr_using_subcommand help; and not __fish_seen_subcommand_from connect list completions man knockd secret routeros nft help" -f -a "knockd" -d 'Run the knock server: watch traffic, match knock sequences, run commands'
complete -c knockr -n "__fish_knockr_using_subcommand help; and not __fish_seen_subcommand_from connect list completions man knockd secret routeros nft help" -f -a "secret" -d 'Shared secrets for time-based knock sequences (docs/otp-sequences.md)'
complete -c knockr -n "__fish_knockr_using_subcommand help; and not __fish_seen_subcommand_from connect list completions man knockd secret routeros nft help" -f -a "routeros" -d 'MikroTik RouterOS helpers'
complete -c knockr -n "__fish_knockr_using_subcommand help; and not __fish_seen_subcommand_from connect list completions man knockd secret routeros nft help" -f -a "nft" -d 'Linux nftables helpers'
complete -c knockr -n "__fish_knockr_using_subcommand help; and not __fish_seen_subcommand_from connect list completions man knockd secret routeros nft help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c knockr -n "__fish_knockr_using_subcommand help; and __fish_seen_subcommand_from secret" -f -a "new" -d 'Print a fresh random 160-bit secret, in base32 and in hex (the same bytes)'
complete -c knockr -n "__fish_knockr_using_subcommand help; and __fish_seen_subcommand_from routeros" -f -a "rules" -d 'Print a RouterOS script that makes the router detect a knock sequence by itself (staged address lists), opening ports to whoever completes it'
complete -c knockr -n "__fish_knockr_using_subcommand help; and __fish_seen_subcommand_from routeros" -f -a "check" -d 'Check that knockd can use each router of each [door.routeros]: reachable, its certificate, credentials, and the list readable and writable (exit 0 when every router is ready, 1 otherwise)'
complete -c knockr -n "__fish_knockr_using_subcommand help; and __fish_seen_subcommand_from routeros" -f -a "apply" -d 'Install the rules of `routeros rules` on one or more routers over the REST API, or take them out with --remove; a second run changes nothing (exit 0 when every router ends as wanted, 1 if one failed, 2 on a usage error)'
complete -c knockr -n "__fish_knockr_using_subcommand help; and __fish_seen_subcommand_from nft" -f -a "rules" -d 'Print an nftables ruleset (table inet knockr) that makes the kernel detect a knock sequence by itself (timed sets), opening ports to whoever completes it; load it with nft -f (again to replace it)'
