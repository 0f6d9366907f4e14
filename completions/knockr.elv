
use builtin;
use str;

set edit:completion:arg-completer[knockr] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'knockr'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'knockr'= {
            cand -p 'Knock PORT[:tcp|udp] or SIZE:icmp (repeatable, or a comma list); targets become hosts'
            cand --port 'Knock PORT[:tcp|udp] or SIZE:icmp (repeatable, or a comma list); targets become hosts'
            cand -d 'Pause between knocks on one host, 0s to 1m, e.g. 200ms or 1s (bare number: ms) [default: 200ms]'
            cand --delay 'Pause between knocks on one host, 0s to 1m, e.g. 200ms or 1s (bare number: ms) [default: 200ms]'
            cand -t 'How long to wait for an answer to each knock, 0s to 1m [default: 200ms]'
            cand --timeout 'How long to wait for an answer to each knock, 0s to 1m [default: 200ms]'
            cand --resolve-timeout 'How long DNS may take for the host names, from the start of the run, 1ms to 1m (names in /etc/hosts never wait) [default: the profiles'' resolve_timeout, else 5s]'
            cand -n 'Protocol for ports given without one'
            cand --network 'Protocol for ports given without one'
            cand --mode 'How TCP knocks are sent: a bare SYN, or a full connect (for networks whose proxies swallow bare SYNs) [default: syn]'
            cand --source 'Send the knocks and the check from this address of this machine (multi-homed machines, VPNs)'
            cand --interface 'Send the knocks and the check through this interface of this machine (SO_BINDTODEVICE)'
            cand --retry 'When the check finds the port closed, knock again, up to N (at most 10) more times (waiting 1s, 2s, 4s, ... up to 8s between rounds)'
            cand --check 'After the last knock, check that this TCP port accepts connections'
            cand --every 'Knock again every DURATION (1s to 24h) until stopped (SIGINT/SIGTERM stop it at once, even mid-round), and at once when this machine''s source address towards the targets changes'
            cand --color 'Colour in the summary: auto (on a terminal, unless NO_COLOR is set), always, never'
            cand -c 'Profiles file [default: ~/.config/knockr/profiles.toml]'
            cand --config 'Profiles file [default: ~/.config/knockr/profiles.toml]'
            cand -u 'Ports given without a protocol are UDP (the C knock''s -u; as -n udp)'
            cand --udp 'Ports given without a protocol are UDP (the C knock''s -u; as -n udp)'
            cand -4 'Use IPv4 addresses only'
            cand --ipv4 'Use IPv4 addresses only'
            cand -6 'Use IPv6 addresses only'
            cand --ipv6 'Use IPv6 addresses only'
            cand -v 'Print each knock as it is sent, on stderr'
            cand --verbose 'Print each knock as it is sent, on stderr'
            cand --dry-run 'Resolve and show what would be sent, but send nothing (and connect nothing)'
            cand --all-addresses 'Knock every address of each host, not only the one ssh would use'
            cand -q 'Print nothing but errors; the exit status tells the result (-s as the Go knockr''s silent flag)'
            cand -s 'Print nothing but errors; the exit status tells the result (-s as the Go knockr''s silent flag)'
            cand --quiet 'Print nothing but errors; the exit status tells the result (-s as the Go knockr''s silent flag)'
            cand --json 'Print the results as one JSON document on stdout'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand connect 'Knock a profile (or with -p a host), wait until PORT answers, then relay stdin/stdout to it (for ssh: ProxyCommand knockr connect %n)'
            cand list 'List the profiles in the profiles file, one a line'
            cand completions 'Print a shell completion script'
            cand man 'Print the man page knockr(1) (roff), or write every page into a directory'
            cand knockd 'Run the knock server: watch traffic, match knock sequences, run commands'
            cand secret 'Shared secrets for time-based knock sequences (docs/otp-sequences.md)'
            cand routeros 'MikroTik RouterOS helpers'
            cand nft 'Linux nftables helpers'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'knockr;connect'= {
            cand -p 'Knock PORT[:tcp|udp] or SIZE:icmp (repeatable, or a comma list); targets become hosts'
            cand --port 'Knock PORT[:tcp|udp] or SIZE:icmp (repeatable, or a comma list); targets become hosts'
            cand -d 'Pause between knocks on one host, 0s to 1m, e.g. 200ms or 1s (bare number: ms) [default: 200ms]'
            cand --delay 'Pause between knocks on one host, 0s to 1m, e.g. 200ms or 1s (bare number: ms) [default: 200ms]'
            cand -t 'How long to wait for an answer to each knock, 0s to 1m [default: 200ms]'
            cand --timeout 'How long to wait for an answer to each knock, 0s to 1m [default: 200ms]'
            cand --resolve-timeout 'How long DNS may take for the host names, from the start of the run, 1ms to 1m (names in /etc/hosts never wait) [default: the profiles'' resolve_timeout, else 5s]'
            cand -n 'Protocol for ports given without one'
            cand --network 'Protocol for ports given without one'
            cand --mode 'How TCP knocks are sent: a bare SYN, or a full connect (for networks whose proxies swallow bare SYNs) [default: syn]'
            cand --source 'Send the knocks and the check from this address of this machine (multi-homed machines, VPNs)'
            cand --interface 'Send the knocks and the check through this interface of this machine (SO_BINDTODEVICE)'
            cand --retry 'When the check finds the port closed, knock again, up to N (at most 10) more times (waiting 1s, 2s, 4s, ... up to 8s between rounds)'
            cand -c 'Profiles file [default: $KNOCKR_CONFIG, else ~/.config/knockr/profiles.toml]'
            cand --config 'Profiles file [default: $KNOCKR_CONFIG, else ~/.config/knockr/profiles.toml]'
            cand -u 'Ports given without a protocol are UDP (the C knock''s -u; as -n udp)'
            cand --udp 'Ports given without a protocol are UDP (the C knock''s -u; as -n udp)'
            cand -4 'Use IPv4 addresses only'
            cand --ipv4 'Use IPv4 addresses only'
            cand -6 'Use IPv6 addresses only'
            cand --ipv6 'Use IPv6 addresses only'
            cand -v 'Print each knock as it is sent, on stderr'
            cand --verbose 'Print each knock as it is sent, on stderr'
            cand --dry-run 'Resolve and show what would be sent, but send nothing (and connect nothing)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'knockr;list'= {
            cand -c 'Profiles file [default: $KNOCKR_CONFIG, else ~/.config/knockr/profiles.toml]'
            cand --config 'Profiles file [default: $KNOCKR_CONFIG, else ~/.config/knockr/profiles.toml]'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'knockr;completions'= {
            cand -c 'Profiles file [default: ~/.config/knockr/profiles.toml]'
            cand --config 'Profiles file [default: ~/.config/knockr/profiles.toml]'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'knockr;man'= {
            cand --dir 'Write every page into DIR: knockr(1), one per subcommand, and the files'' knockr-profiles(5) and knockr-knockd.toml(5)'
            cand -c 'Profiles file [default: ~/.config/knockr/profiles.toml]'
            cand --config 'Profiles file [default: ~/.config/knockr/profiles.toml]'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'knockr;knockd'= {
            cand -c 'Server configuration: a knockr TOML file or a classic knockd.conf (told apart by content)'
            cand --config 'Server configuration: a knockr TOML file or a classic knockd.conf (told apart by content)'
            cand -i 'Capture on this interface ("any": all of them); repeatable; replaces the config''s'
            cand --interface 'Capture on this interface ("any": all of them); repeatable; replaces the config''s'
            cand --state-file 'Keep open knockers and used time-based sequences in this file; replaces the config''s state_file (--read and --dry-run use none)'
            cand --convert 'Print a classic knockd.conf as knockr''s TOML (the same doors, commands and timeouts, with comments on what TOML adds), and exit'
            cand --read 'Replay a capture file (pcap) instead of capturing live; its timestamps are the clock'
            cand --check 'Validate the configuration as a start would (files, state file, kernel filter), print the doors and warnings, and exit: 0 only if it would start'
            cand --dry-run 'Print the commands instead of running them (one-time sequence files are not changed)'
            cand --json 'Log one JSON object per line instead of knockd-style lines; with --check, print the configuration as one JSON document'
            cand -v 'Also log debug lines'
            cand --verbose 'Also log debug lines'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'knockr;secret'= {
            cand -c 'Profiles file [default: ~/.config/knockr/profiles.toml]'
            cand --config 'Profiles file [default: ~/.config/knockr/profiles.toml]'
            cand -h 'Print help'
            cand --help 'Print help'
            cand new 'Print a fresh random 160-bit secret, in base32 and in hex (the same bytes)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'knockr;secret;new'= {
            cand -c 'Profiles file [default: ~/.config/knockr/profiles.toml]'
            cand --config 'Profiles file [default: ~/.config/knockr/profiles.toml]'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'knockr;secret;help'= {
            cand new 'Print a fresh random 160-bit secret, in base32 and in hex (the same bytes)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'knockr;secret;help;new'= {
        }
        &'knockr;secret;help;help'= {
        }
        &'knockr;routeros'= {
            cand -c 'Profiles file [default: ~/.config/knockr/profiles.toml]'
            cand --config 'Profiles file [default: ~/.config/knockr/profiles.toml]'
            cand -h 'Print help'
            cand --help 'Print help'
            cand rules 'Print a RouterOS script that makes the router detect a knock sequence by itself (staged address lists), opening ports to whoever completes it'
            cand check 'Check that knockd can use each router of each [door.routeros]: reachable, its certificate, credentials, and the list readable and writable (exit 0 when every router is ready, 1 otherwise)'
            cand apply 'Install the rules of `routeros rules` on one or more routers over the REST API, or take them out with --remove; a second run changes nothing (exit 0 when every router ends as wanted, 1 if one failed, 2 on a usage error)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'knockr;routeros;rules'= {
            cand --sequence 'The sequence instead of a profile: PORT[:tcp|udp] or SIZE:icmp, repeatable or a comma list'
            cand --wan 'Interface list the knocks arrive on'
            cand --protect 'Ports to open to a knocker: PORT[-PORT][:tcp|udp] (tcp unless told), e.g. 22,8291,51820:udp,60000-60010'
            cand --list 'Address list a knocker lands on'
            cand --timeout 'How long a knocker stays on the list (the router removes it itself)'
            cand --stage-timeout 'Time allowed between two knocks [default: 10s, or 4x the profile''s delay if longer]'
            cand --block-for 'How long a source that began the sequence and then sent anything else (a scan) is blocked from knocking'
            cand --place-before 'Comment of the input rule the accept goes before [default: the default configuration''s drop rule if there is one, else the top of the input chain]'
            cand --tag 'Tag of the chain, lists and comments, by which importing again (or apply) replaces the rules and --undo (or apply --remove) finds them; one per knock door on a router [default: knockr-PROFILE, or knockr]'
            cand --name 'Tag of the chain, lists and comments, by which importing again (or apply) replaces the rules and --undo (or apply --remove) finds them; one per knock door on a router [default: knockr-PROFILE, or knockr]'
            cand --family 'Rules under /ip (ipv4), /ipv6 (ipv6), or both (any): knockers of either family'
            cand -c 'Profiles file [default: $KNOCKR_CONFIG, else ~/.config/knockr/profiles.toml]'
            cand --config 'Profiles file [default: $KNOCKR_CONFIG, else ~/.config/knockr/profiles.toml]'
            cand --allow-weak 'Generate a sequence a port scan completes easily (one knock, or one protocol in ascending or descending order), with a warning, instead of refusing it'
            cand --undo 'Print the script that removes the rules and lists of this tag instead'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'knockr;routeros;check'= {
            cand -c 'The knockd configuration whose [door.routeros] tables to check'
            cand --config 'The knockd configuration whose [door.routeros] tables to check'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'knockr;routeros;apply'= {
            cand --sequence 'The sequence instead of a profile: PORT[:tcp|udp] or SIZE:icmp, repeatable or a comma list'
            cand --wan 'Interface list the knocks arrive on'
            cand --protect 'Ports to open to a knocker: PORT[-PORT][:tcp|udp] (tcp unless told), e.g. 22,8291,51820:udp,60000-60010'
            cand --list 'Address list a knocker lands on'
            cand --timeout 'How long a knocker stays on the list (the router removes it itself)'
            cand --stage-timeout 'Time allowed between two knocks [default: 10s, or 4x the profile''s delay if longer]'
            cand --block-for 'How long a source that began the sequence and then sent anything else (a scan) is blocked from knocking'
            cand --place-before 'Comment of the input rule the accept goes before [default: the default configuration''s drop rule if there is one, else the top of the input chain]'
            cand --tag 'Tag of the chain, lists and comments, by which importing again (or apply) replaces the rules and --undo (or apply --remove) finds them; one per knock door on a router [default: knockr-PROFILE, or knockr]'
            cand --name 'Tag of the chain, lists and comments, by which importing again (or apply) replaces the rules and --undo (or apply --remove) finds them; one per knock door on a router [default: knockr-PROFILE, or knockr]'
            cand --family 'Rules under /ip (ipv4), /ipv6 (ipv6), or both (any): knockers of either family'
            cand --door 'The door of -c''s knockd configuration whose [door.routeros] names the routers, the user, the password and the certificate check'
            cand -c 'The knockd configuration that --door names a door of'
            cand --config 'The knockd configuration that --door names a door of'
            cand --url 'A router, as http(s)://HOST[:PORT] (repeatable)'
            cand --user 'The RouterOS user (its group needs read,write,api,rest-api)'
            cand --password-file 'File whose first line is the password (mode 600, yours or root''s)'
            cand --password-env 'Environment variable holding the password'
            cand --ca-file 'Trust only this CA (PEM) for the routers'' certificates'
            cand --fingerprint 'Trust the certificate with this SHA-256 fingerprint (`routeros check` shows it)'
            cand --retry 'How long each request to a router is retried while it fails (5xx, unreachable)'
            cand --profiles 'Profiles file for PROFILE [default: $KNOCKR_CONFIG, else ~/.config/knockr/profiles.toml]'
            cand --allow-weak 'Generate a sequence a port scan completes easily (one knock, or one protocol in ascending or descending order), with a warning, instead of refusing it'
            cand --remove 'Take out every rule and stage list entry of the tag instead'
            cand --dry-run 'Print what would change on each router, change nothing'
            cand --insecure 'Do not check the certificate at all (anyone on the path can take the password)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'knockr;routeros;help'= {
            cand rules 'Print a RouterOS script that makes the router detect a knock sequence by itself (staged address lists), opening ports to whoever completes it'
            cand check 'Check that knockd can use each router of each [door.routeros]: reachable, its certificate, credentials, and the list readable and writable (exit 0 when every router is ready, 1 otherwise)'
            cand apply 'Install the rules of `routeros rules` on one or more routers over the REST API, or take them out with --remove; a second run changes nothing (exit 0 when every router ends as wanted, 1 if one failed, 2 on a usage error)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'knockr;routeros;help;rules'= {
        }
        &'knockr;routeros;help;check'= {
        }
        &'knockr;routeros;help;apply'= {
        }
        &'knockr;routeros;help;help'= {
        }
        &'knockr;nft'= {
            cand -c 'Profiles file [default: ~/.config/knockr/profiles.toml]'
            cand --config 'Profiles file [default: ~/.config/knockr/profiles.toml]'
            cand -h 'Print help'
            cand --help 'Print help'
            cand rules 'Print an nftables ruleset (table inet knockr) that makes the kernel detect a knock sequence by itself (timed sets), opening ports to whoever completes it; load it with nft -f (again to replace it)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'knockr;nft;rules'= {
            cand --sequence 'The sequence instead of a profile: PORT[:tcp|udp] or SIZE:icmp, repeatable or a comma list'
            cand --protect 'Ports to open to a knocker: PORT[-PORT][:tcp|udp] (tcp unless told), e.g. 22,51820:udp,60000-60010'
            cand --interface 'Only knocks arriving on this interface count [default: any interface]'
            cand --table 'Name of the table (table inet NAME), which loading again replaces'
            cand --set 'Base name of the sets a knocker lands in (NAME_v4 and NAME_v6)'
            cand --timeout 'How long a knocker stays in the set (the kernel removes it itself)'
            cand --stage-timeout 'Time allowed between two knocks [default: 10s, or 4x the profile''s delay if longer]'
            cand --block-for 'How long a source that began the sequence and then sent anything else (a scan) is blocked from knocking'
            cand --family 'Sets and rules for ipv4, ipv6, or both (any)'
            cand -c 'Profiles file [default: $KNOCKR_CONFIG, else ~/.config/knockr/profiles.toml]'
            cand --config 'Profiles file [default: $KNOCKR_CONFIG, else ~/.config/knockr/profiles.toml]'
            cand --allow-weak 'Generate a sequence a port scan completes easily (one knock, or one protocol in ascending or descending order), with a warning, instead of refusing it'
            cand --for-knockd 'Print only what a [door.nftables] door needs: the table, its two sets, and the input chain that opens the --protect ports to the addresses in them (knockd detects the knock, so no sequence is needed)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'knockr;nft;help'= {
            cand rules 'Print an nftables ruleset (table inet knockr) that makes the kernel detect a knock sequence by itself (timed sets), opening ports to whoever completes it; load it with nft -f (again to replace it)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'knockr;nft;help;rules'= {
        }
        &'knockr;nft;help;help'= {
        }
        &'knockr;help'= {
            cand connect 'Knock a profile (or with -p a host), wait until PORT answers, then relay stdin/stdout to it (for ssh: ProxyCommand knockr connect %n)'
            cand list 'List the profiles in the profiles file, one a line'
            cand completions 'Print a shell completion script'
            cand man 'Print the man page knockr(1) (roff), or write every page into a directory'
            cand knockd 'Run the knock server: watch traffic, match knock sequences, run commands'
            cand secret 'Shared secrets for time-based knock sequences (docs/otp-sequences.md)'
            cand routeros 'MikroTik RouterOS helpers'
            cand nft 'Linux nftables helpers'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'knockr;help;connect'= {
        }
        &'knockr;help;list'= {
        }
        &'knockr;help;completions'= {
        }
        &'knockr;help;man'= {
        }
        &'knockr;help;knockd'= {
        }
        &'knockr;help;secret'= {
            cand new 'Print a fresh random 160-bit secret, in base32 and in hex (the same bytes)'
        }
        &'knockr;help;secret;new'= {
        }
        &'knockr;help;routeros'= {
            cand rules 'Print a RouterOS script that makes the router detect a knock sequence by itself (staged address lists), opening ports to whoever completes it'
            cand check 'Check that knockd can use each router of each [door.routeros]: reachable, its certificate, credentials, and the list readable and writable (exit 0 when every router is ready, 1 otherwise)'
            cand apply 'Install the rules of `routeros rules` on one or more routers over the REST API, or take them out with --remove; a second run changes nothing (exit 0 when every router ends as wanted, 1 if one failed, 2 on a usage error)'
        }
        &'knockr;help;routeros;rules'= {
        }
        &'knockr;help;routeros;check'= {
        }
        &'knockr;help;routeros;apply'= {
        }
        &'knockr;help;nft'= {
            cand rules 'Print an nftables ruleset (table inet knockr) that makes the kernel detect a knock sequence by itself (timed sets), opening ports to whoever completes it; load it with nft -f (again to replace it)'
        }
        &'knockr;help;nft;rules'= {
        }
        &'knockr;help;help'= {
        }
    ]
    $completions[$command]
}
