//! The knock-spec parser (`7000`, `8000:udp`, `7000,8000:udp,9000`) shared by
//! the command line, the profiles file and knockd.conf. The first byte picks
//! the default protocol; the rest is the spec. A spec that parses must print
//! back to text that parses to the same knocks.

#![no_main]

use knockr::core::knock::{Knock, Proto, parse_knock, parse_list, parse_port};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Ok(spec) = std::str::from_utf8(rest) else {
        return;
    };
    let default = if pick & 1 == 0 {
        Proto::Tcp
    } else {
        Proto::Udp
    };

    if let Ok(knock) = parse_knock(spec, default) {
        // Port 0 does not exist; an ICMP knock's "port" is its payload size, and 0 is one.
        assert!(knock.port != 0 || knock.proto == Proto::Icmp, "{spec:?}");
        assert_eq!(knock.to_string().parse::<Knock>(), Ok(knock), "{spec:?}");
        assert_eq!(parse_list(spec, default), Ok(vec![knock]), "{spec:?}");
    }
    match parse_list(spec, default) {
        Ok(knocks) => {
            assert_eq!(knocks.len(), spec.split(',').count());
            let printed: Vec<String> = knocks.iter().map(Knock::to_string).collect();
            assert_eq!(parse_list(&printed.join(","), Proto::Tcp), Ok(knocks));
        }
        Err(err) => assert!(!err.to_string().contains('\n'), "{err}"),
    }
    if let Ok(port) = parse_port(spec) {
        assert_eq!(
            port.to_string().trim_start_matches('0'),
            spec.trim_start_matches('0')
        );
    }
});
