use super::*;

/// Decodes a quoted-printable body (hard breaks as CRLF), to check round trips.
fn qp_decode(body: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(body).expect("7-bit output");
    let mut out = Vec::new();
    let lines: Vec<&str> = text.split("\r\n").collect();
    for (i, line) in lines.iter().enumerate() {
        let (line, soft) = match line.strip_suffix('=') {
            Some(l) => (l, true),
            None => (*line, false),
        };
        let b = line.as_bytes();
        let mut j = 0;
        while j < b.len() {
            if b[j] == b'=' {
                out.push(u8::from_str_radix(&line[j + 1..j + 3], 16).expect("hex"));
                j += 3;
            } else {
                out.push(b[j]);
                j += 1;
            }
        }
        if !soft && i + 1 < lines.len() {
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

fn seven_bit(out: &[u8]) -> bool {
    out.iter().all(|&b| b < 0x80)
}

fn convert(msg: &[u8]) -> Vec<u8> {
    let out = downgrade(msg).expect("convertible");
    assert!(seven_bit(&out), "{}", String::from_utf8_lossy(&out));
    out
}

#[test]
fn single_part_8bit_text_becomes_quoted_printable() {
    let msg = "From: a@x\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
               Content-Transfer-Encoding: 8bit\r\nSubject: s\r\n\r\nGrüße = gut \r\n.\r\nend\r\n";
    let out = convert(msg.as_bytes());
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "From: a@x\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Subject: s\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
         Gr=C3=BC=C3=9Fe =3D gut=20\r\n.\r\nend\r\n"
    );
}

#[test]
fn a_message_without_mime_headers_gets_them() {
    let out = convert("Subject: s\n\ncaf\u{e9}\n".as_bytes());
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "Subject: s\r\nMIME-Version: 1.0\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
         caf=C3=A9\r\n"
    );
}

const ALTERNATIVE: &str = "MIME-Version: 1.0\r\n\
    Content-Type: multipart/alternative;\r\n boundary=\"b1 x\"\r\n\
    Content-Transfer-Encoding: 8bit\r\n\r\n\
    This is the preamble.\r\n\
    --b1 x\r\n\
    Content-Type: text/plain; charset=us-ascii\r\n\r\n\
    plain ascii\r\n--b1 xx is not a boundary\r\n\
    --b1 x\r\n\
    Content-Type: text/html; charset=utf-8\r\n\
    Content-Transfer-Encoding: 8bit\r\n\r\n\
    <p>na\u{ef}ve</p>\r\n\
    --b1 x--\r\n\
    The epilogue.\r\n";

#[test]
fn only_the_8bit_part_of_an_alternative_is_converted() {
    let out = convert(ALTERNATIVE.as_bytes());
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "MIME-Version: 1.0\r\n\
         Content-Type: multipart/alternative;\r\n boundary=\"b1 x\"\r\n\
         Content-Transfer-Encoding: 7bit\r\n\r\n\
         This is the preamble.\r\n\
         --b1 x\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\r\n\
         plain ascii\r\n--b1 xx is not a boundary\r\n\
         --b1 x\r\n\
         Content-Type: text/html; charset=utf-8\r\n\
         Content-Transfer-Encoding: quoted-printable\r\n\r\n\
         <p>na=C3=AFve</p>\r\n\
         --b1 x--\r\n\
         The epilogue.\r\n"
    );
}

const NESTED: &str = "Content-Type: multipart/mixed; boundary=outer\r\nMIME-Version: 1.0\r\n\r\n\
    --outer\r\n\
    Content-Type: multipart/alternative; boundary=inner\r\n\r\n\
    --inner\r\n\r\nplain \u{fc}\r\n\
    --inner\r\nContent-Type: text/html\r\n\r\n<b>7 bit</b>\r\n\
    --outer\r\n\
    Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
    Subject: inner\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\u{e4}\r\n\
    --outer\r\n\
    Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA\r\n\
    --outer--\r\n";

#[test]
fn nested_multiparts_and_messages_are_followed() {
    let out = convert(NESTED.as_bytes());
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "Content-Type: multipart/mixed; boundary=outer\r\nMIME-Version: 1.0\r\n\r\n\
         --outer\r\n\
         Content-Type: multipart/alternative; boundary=inner\r\n\r\n\
         --inner\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nplain =C3=BC\r\n\
         --inner\r\nContent-Type: text/html\r\n\r\n<b>7 bit</b>\r\n\
         --outer\r\n\
         Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 7bit\r\n\r\n\
         Subject: inner\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: quoted-printable\r\n\r\n=C3=A4\r\n\
         --outer\r\n\
         Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA\r\n\
         --outer--\r\n"
    );
}

#[test]
fn long_lines_get_soft_breaks_and_decode_back() {
    let text = format!(
        "{}x \r\nshort\t\r\n{}\r\n",
        "é".repeat(100),
        "a=".repeat(60)
    );
    let msg = format!("Content-Type: text/plain; charset=utf-8\r\n\r\n{text}");
    let out = convert(msg.as_bytes());
    let body = &out[out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4..];
    for line in body.split(|&b| b == b'\n') {
        assert!(line.len() <= 77, "{}", String::from_utf8_lossy(line)); // 76 and the CR
    }
    assert!(body.windows(3).any(|w| w == b"=\r\n"), "soft line breaks");
    assert_eq!(qp_decode(body), text.as_bytes());
}

#[test]
fn a_line_longer_than_a_piece_is_converted_whole() {
    let text = format!("{}\r\n", "ä".repeat(3 * MAX_PIECE));
    let msg = format!("Subject: long\r\n\r\n{text}");
    let out = convert(msg.as_bytes());
    let body = &out[out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4..];
    assert_eq!(qp_decode(body), text.as_bytes());
}

/// Feeds both passes in pieces of `size` octets.
fn in_chunks(msg: &[u8], size: usize) -> Vec<u8> {
    let mut scanner = Scanner::default();
    msg.chunks(size).for_each(|c| scanner.feed(c));
    let mut d = Downgrader::new(scanner.finish().expect("convertible"));
    let mut out = Vec::new();
    msg.chunks(size).for_each(|c| d.feed(c, &mut out));
    d.finish(&mut out);
    out
}

#[test]
fn chunks_convert_as_the_whole() {
    for msg in [ALTERNATIVE, NESTED] {
        // Bare LF and CR line ends, a CRLF cut between its CR and LF, boundaries cut anywhere.
        let msg = msg
            .replace("plain ascii\r\n", "plain ascii\n")
            .replace("<b>", "\r<b>");
        let whole = convert(msg.as_bytes());
        for size in 1..=msg.len() {
            assert_eq!(in_chunks(msg.as_bytes(), size), whole, "chunks of {size}");
        }
        // Two cuts anywhere.
        let bytes = msg.as_bytes();
        for cut in (0..bytes.len()).step_by(7) {
            let mut s = Scanner::default();
            s.feed(&bytes[..cut]);
            s.feed(&bytes[cut..]);
            let mut d = Downgrader::new(s.finish().unwrap());
            let mut out = Vec::new();
            d.feed(&bytes[..cut], &mut out);
            d.feed(&bytes[cut..], &mut out);
            d.finish(&mut out);
            assert_eq!(out, whole, "cut at {cut}");
        }
    }
}

#[test]
fn a_7bit_message_passes_byte_identical() {
    let msg = ALTERNATIVE.replace('\u{ef}', "i");
    let plan = {
        let mut s = Scanner::default();
        s.feed(msg.as_bytes());
        s.finish().unwrap()
    };
    assert!(!plan.changes_anything());
    assert_eq!(downgrade(msg.as_bytes()).unwrap(), msg.as_bytes());
    // Headers with raw 8-bit octets are left alone, as Postfix does.
    let msg = "Subject: Gr\u{fc}\u{df}e\r\n\r\nhello\r\n";
    assert_eq!(downgrade(msg.as_bytes()).unwrap(), msg.as_bytes());
}

#[test]
fn what_cannot_be_converted_faithfully_is_refused() {
    let binary =
        "Content-Type: application/x\r\nContent-Transfer-Encoding: binary\r\n\r\n\u{ff}\r\n";
    let base64 = "Content-Transfer-Encoding: base64\r\n\r\nAA\u{e9}A\r\n";
    let partial = "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
                   Content-Type: message/partial; id=x\r\n\r\n\u{e9}\r\n--b--\r\n";
    for msg in [binary, base64, partial] {
        let err = downgrade(msg.as_bytes()).unwrap_err();
        assert!(err.0.contains("8-bit"), "{err}");
    }
    // Without 8-bit octets, a binary part is no problem.
    let msg = "Content-Transfer-Encoding: binary\r\n\r\nabc\r\n";
    assert_eq!(downgrade(msg.as_bytes()).unwrap(), msg.as_bytes());
}

#[test]
fn plan_reads_a_body() {
    let body = Body::from_bytes(ALTERNATIVE.as_bytes().to_vec());
    let plan = plan(&body).unwrap();
    assert!(plan.changes_anything());
    let mut d = Downgrader::new(plan);
    let mut out = Vec::new();
    d.feed(ALTERNATIVE.as_bytes(), &mut out);
    d.finish(&mut out);
    assert_eq!(out, convert(ALTERNATIVE.as_bytes()));
}
