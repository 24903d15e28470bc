//! Values on the wire: [`Cell`] encodes one value in PostgreSQL's text or binary format for
//! its SQL type; [`decode_param`] reads a bound parameter sent in either format.

use std::error::Error;

use bytes::{BufMut, BytesMut};
use pgwire::api::Type;
use pgwire::types::ToSqlText;
use pgwire::types::format::FormatOptions;
use postgres_types::{IsNull, ToSql, to_sql_checked};

use crate::query::error::SqlError;
use crate::query::scalar::{Scalar, format_numeric};
use crate::query::types::{SqlType, format_date, format_timestamp};

/// A statement's error as the protocol carries it: severity, SQLSTATE, message, position, hint.
pub(crate) fn error_info(e: SqlError) -> pgwire::error::ErrorInfo {
    let mut info = pgwire::error::ErrorInfo::new("ERROR".to_string(), e.sqlstate.to_string(), e.message);
    info.position = e.position.map(|p| p.to_string());
    info.hint = e.hint;
    info
}

/// A statement's error as pgwire's error (sent as an ErrorResponse; the session goes on).
pub(crate) fn to_pg_error(e: SqlError) -> pgwire::error::PgWireError {
    pgwire::error::PgWireError::UserError(Box::new(error_info(e)))
}

/// Microseconds and days between the Unix epoch and PostgreSQL's (2000-01-01).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
const PG_EPOCH_DAYS: i64 = 10_957;

pub(crate) fn pg_type(t: SqlType) -> Type {
    Type::from_oid(t.oid()).unwrap_or(Type::TEXT)
}

/// One value to encode.
#[derive(Debug)]
pub(crate) struct Cell<'a> {
    pub value: &'a Scalar,
    pub ty: SqlType,
}

impl ToSqlText for Cell<'_> {
    fn to_sql_text(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
        _f: &FormatOptions,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self.value.to_text(self.ty) {
            None => Ok(IsNull::Yes),
            Some(s) => {
                out.put_slice(s.as_bytes());
                Ok(IsNull::No)
            }
        }
    }
}

impl ToSql for Cell<'_> {
    fn to_sql(&self, _ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        use SqlType as T;
        let v = self.value;
        if v.is_null() {
            return Ok(IsNull::Yes);
        }
        match (self.ty, v) {
            (T::Bool, Scalar::Bool(b)) => out.put_u8(*b as u8),
            (T::Int2, Scalar::Int(i)) => out.put_i16(*i as i16),
            (T::Int4, Scalar::Int(i)) => out.put_i32(*i as i32),
            (T::Int8, Scalar::Int(i)) => out.put_i64(*i),
            (T::Float4, Scalar::Float(f)) => out.put_f32(*f as f32),
            (T::Float8, Scalar::Float(f)) => out.put_f64(*f),
            (T::Float4, Scalar::Int(i)) => out.put_f32(*i as f32),
            (T::Float8, Scalar::Int(i)) => out.put_f64(*i as f64),
            (T::Numeric, Scalar::Float(f)) => encode_numeric(&format_numeric(*f), out),
            (T::Numeric, Scalar::Int(i)) => encode_numeric(&i.to_string(), out),
            (T::Timestamp | T::TimestampTz, Scalar::Time(t)) => out.put_i64(t - PG_EPOCH_MICROS),
            (T::Date, Scalar::Time(d)) => out.put_i32((d - PG_EPOCH_DAYS) as i32),
            (T::Interval, Scalar::Interval(iv)) => {
                out.put_i64(iv.micros);
                out.put_i32(iv.days);
                out.put_i32(iv.months);
            }
            (T::Bytea, Scalar::Text(t)) => out.put_slice(&crate::query::types::bytea_bytes(t)),
            (T::Jsonb, _) => {
                out.put_u8(1);
                out.put_slice(v.to_text(self.ty).unwrap_or_default().as_bytes());
            }
            _ => out.put_slice(v.to_text(self.ty).unwrap_or_default().as_bytes()),
        }
        Ok(IsNull::No)
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// PostgreSQL's binary numeric: base-10000 digits with weight, sign and display scale.
fn encode_numeric(text: &str, out: &mut BytesMut) {
    if text == "NaN" || text.contains("Infinity") {
        let sign: u16 = match text {
            "NaN" => 0xC000,
            "Infinity" => 0xD000,
            _ => 0xF000,
        };
        out.put_i16(0);
        out.put_i16(0);
        out.put_u16(sign);
        out.put_i16(0);
        return;
    }
    let neg = text.starts_with('-');
    let t = text.trim_start_matches('-');
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    let dscale = frac.len() as i16;
    // Pad the integer part on the left and the fraction on the right to groups of 4 digits.
    let int_pad = format!("{}{int}", "0".repeat((4 - int.len() % 4) % 4));
    let frac_pad = format!("{frac}{}", "0".repeat((4 - frac.len() % 4) % 4));
    let mut digits: Vec<i16> = int_pad
        .as_bytes()
        .chunks(4)
        .chain(frac_pad.as_bytes().chunks(4))
        .map(|c| std::str::from_utf8(c).unwrap_or("0").parse().unwrap_or(0))
        .collect();
    let mut weight = (int_pad.len() / 4) as i16 - 1;
    while digits.first() == Some(&0) && digits.len() > 1 {
        digits.remove(0);
        weight -= 1;
    }
    while digits.last() == Some(&0) {
        digits.pop();
    }
    if digits.is_empty() {
        weight = 0;
    }
    out.put_i16(digits.len() as i16);
    out.put_i16(weight);
    out.put_u16(if neg && !digits.is_empty() { 0x4000 } else { 0 });
    out.put_i16(dscale);
    for d in digits {
        out.put_i16(d);
    }
}

/// A binary `numeric` (base-10000 digits, weight, sign, display scale) as its exact text.
fn decode_numeric(b: &[u8]) -> Result<String, String> {
    let bad = || "malformed binary numeric parameter".to_string();
    let word = |i: usize| b.get(i..i + 2).map(|w| u16::from_be_bytes([w[0], w[1]])).ok_or_else(bad);
    let (ndigits, weight, sign, dscale) = (word(0)? as i16, word(2)? as i16, word(4)?, word(6)? as i16);
    if ndigits < 0 || dscale < 0 || b.len() != 8 + 2 * ndigits as usize {
        return Err(bad());
    }
    match sign {
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        0x0000 | 0x4000 => {}
        _ => return Err(bad()),
    }
    let digits = (0..ndigits as usize).map(|i| word(8 + 2 * i)).collect::<Result<Vec<u16>, String>>()?;
    if digits.iter().any(|&d| d >= 10_000) {
        return Err(bad());
    }
    // The group at power 10000^e is digits[weight - e] (zero outside the digits).
    let group = |e: i32| -> u16 {
        let i = weight as i32 - e;
        if (0..ndigits as i32).contains(&i) { digits[i as usize] } else { 0 }
    };
    let mut out = String::new();
    if sign == 0x4000 && digits.iter().any(|&d| d != 0) {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        out += &group(weight as i32).to_string();
        for e in (0..weight as i32).rev() {
            out += &format!("{:04}", group(e));
        }
    }
    if dscale > 0 {
        let mut frac = String::new();
        let mut e = -1;
        while frac.len() < dscale as usize {
            frac += &format!("{:04}", group(e));
            e -= 1;
        }
        frac.truncate(dscale as usize);
        out.push('.');
        out += &frac;
    }
    Ok(out)
}

/// A bound parameter as text, whatever format and type it was sent in.
pub(crate) fn decode_param(bytes: &[u8], binary: bool, ty: Option<&Type>) -> crate::Result<String> {
    decode_param_text(bytes, binary, ty).map_err(crate::Error::Invalid)
}

/// [`decode_param`], its error a reason as text.
fn decode_param_text(bytes: &[u8], binary: bool, ty: Option<&Type>) -> std::result::Result<String, String> {
    if !binary {
        return String::from_utf8(bytes.to_vec()).map_err(|_| "parameter is not valid UTF-8".to_string());
    }
    let be = |n: usize| -> Result<&[u8], String> {
        if bytes.len() == n {
            Ok(bytes)
        } else {
            Err(format!("binary parameter of {} bytes where {n} were expected", bytes.len()))
        }
    };
    let t = ty.cloned().unwrap_or(Type::TEXT);
    Ok(match t {
        Type::BOOL => (be(1)?[0] != 0).to_string(),
        Type::INT2 => i16::from_be_bytes(be(2)?.try_into().map_err(|_| "int2")?).to_string(),
        Type::INT4 => i32::from_be_bytes(be(4)?.try_into().map_err(|_| "int4")?).to_string(),
        Type::INT8 => i64::from_be_bytes(be(8)?.try_into().map_err(|_| "int8")?).to_string(),
        Type::FLOAT4 => format!("{:?}", f32::from_be_bytes(be(4)?.try_into().map_err(|_| "float4")?)),
        Type::FLOAT8 => format!("{:?}", f64::from_be_bytes(be(8)?.try_into().map_err(|_| "float8")?)),
        Type::TIMESTAMP | Type::TIMESTAMPTZ => {
            let us = i64::from_be_bytes(be(8)?.try_into().map_err(|_| "timestamp")?);
            format_timestamp(us + PG_EPOCH_MICROS, t == Type::TIMESTAMPTZ)
        }
        Type::DATE => {
            let d = i32::from_be_bytes(be(4)?.try_into().map_err(|_| "date")?) as i64;
            format_date(d + PG_EPOCH_DAYS)
        }
        Type::NUMERIC => decode_numeric(bytes)?,
        Type::BYTEA => crate::query::types::bytea_text(bytes),
        Type::JSONB if bytes.first() == Some(&1) => String::from_utf8(bytes[1..].to_vec()).map_err(|_| "jsonb")?,
        _ => String::from_utf8(bytes.to_vec()).map_err(|_| "parameter is not valid UTF-8".to_string())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(t: &str) -> Vec<u8> {
        let mut b = BytesMut::new();
        encode_numeric(t, &mut b);
        b.to_vec()
    }

    #[test]
    fn numerics_encode_in_base_10000() {
        // 12345.678 = 1|2345.6780 → ndigits 3, weight 1, dscale 3, digits 1 2345 6780
        assert_eq!(numeric("12345.678"), vec![0, 3, 0, 1, 0, 0, 0, 3, 0, 1, 9, 41, 26, 124]);
        assert_eq!(numeric("-0.5"), vec![0, 1, 255, 255, 64, 0, 0, 1, 19, 136]);
        assert_eq!(numeric("0"), vec![0, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn binary_numeric_parameters_decode_exactly() {
        for t in ["12345.678", "-0.5", "0", "1.0", "0.0001", "-100000000", "3.14159265358979", "10000.5"] {
            assert_eq!(decode_param(&numeric(t), true, Some(&Type::NUMERIC)).unwrap(), t, "{t}");
        }
        // pgjdbc's BigDecimal 1.0: ndigits 1, weight 0, positive, scale 1, digits [1].
        assert_eq!(decode_numeric(&[0, 1, 0, 0, 0, 0, 0, 1, 0, 1]).unwrap(), "1.0");
        // NaN, and malformed: a digit past 9999, a short body.
        assert_eq!(decode_numeric(&[0, 0, 0, 0, 0xC0, 0, 0, 0]).unwrap(), "NaN");
        assert!(decode_numeric(&[0, 1, 0, 0, 0, 0, 0, 0, 0x27, 0x10]).is_err());
        assert!(decode_numeric(&[0, 1, 0, 0]).is_err());
    }
}
