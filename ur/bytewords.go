package ur

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
)

// ErrBytewords: the text is not valid bytewords (an unknown word, a bad length or a CRC-32
// that does not match the body).
var ErrBytewords = errors.New("invalid bytewords")

// words is the BCR-2020-012 bytewords table: byte i is words[4i:4i+4]. The first and last
// letters of every word are unique, so the minimal style keeps only those two.
const words = "ableacidalsoapexaquaarchatomauntawayaxisbackbaldbarnbeltbetabiasbluebodybragbrewbulbbuzzcalmcashcatschefcityclawcodecolacookcostcruxcurlcuspcyandarkdatadaysdelidicedietdoordowndrawdropdrumdulldutyeacheasyechoedgeepicevenexamexiteyesfactfairfernfigsfilmfishfizzflapflewfluxfoxyfreefrogfuelfundgalagamegeargemsgiftgirlglowgoodgraygrimgurugushgyrohalfhanghardhawkheathelphighhillholyhopehornhutsicedideaidleinchinkyintoirisironitemjadejazzjoinjoltjowljudojugsjumpjunkjurykeepkenokeptkeyskickkilnkingkitekiwiknoblamblavalazyleaflegsliarlimplionlistlogoloudloveluaulucklungmainmanymathmazememomenumeowmildmintmissmonknailnavyneednewsnextnoonnotenumbobeyoboeomitonyxopenovalowlspaidpartpeckplaypluspoempoolposepuffpumapurrquadquizraceramprealredorichroadrockroofrubyruinrunsrustsafesagascarsetssilkskewslotsoapsolosongstubsurfswantacotasktaxitenttiedtimetinytoiltombtoystriptunatwinuglyundouniturgeuservastveryvetovialvibeviewvisavoidvowswallwandwarmwaspwavewaxywebswhatwhenwhizwolfworkyankyawnyellyogayurtzapszerozestzinczonezoom"

// minimal maps a word's first and last letters ('a'..'z' each) to its byte, -1 where none.
var minimal = func() (t [26 * 26]int16) {
	for i := range t {
		t[i] = -1
	}
	for b := 0; b < 256; b++ {
		w := words[4*b : 4*b+4]
		t[int(w[0]-'a')*26+int(w[3]-'a')] = int16(b)
	}
	return t
}()

// Style is how bytewords are written: whole words separated by spaces (Standard) or
// hyphens (URI), or two letters a byte with no separator (Minimal, the one URs use).
type Style int

const (
	Standard Style = iota
	URI
	Minimal
)

// withCRC appends the big-endian CRC-32 of b.
func withCRC(b []byte) []byte {
	return binary.BigEndian.AppendUint32(append([]byte(nil), b...), crc32.ChecksumIEEE(b))
}

// EncodeBytewords writes b and its CRC-32 as bytewords in style s.
func EncodeBytewords(s Style, b []byte) string {
	full := withCRC(b)
	var sb strings.Builder
	for i, c := range full {
		w := words[4*int(c) : 4*int(c)+4]
		switch s {
		case Minimal:
			sb.WriteByte(w[0])
			sb.WriteByte(w[3])
		default:
			if i > 0 {
				sb.WriteByte(map[Style]byte{Standard: ' ', URI: '-'}[s])
			}
			sb.WriteString(w)
		}
	}
	return sb.String()
}

// lookup is the byte of a word given its letters (lower-cased here), checking the middle
// letters of a four-letter word.
func lookup(w string) (byte, bool) {
	w = strings.ToLower(w)
	if len(w) != 2 && len(w) != 4 {
		return 0, false
	}
	x, y := int(w[0])-'a', int(w[len(w)-1])-'a'
	if x < 0 || x >= 26 || y < 0 || y >= 26 {
		return 0, false
	}
	v := minimal[x*26+y]
	if v < 0 {
		return 0, false
	}
	if len(w) == 4 && w != words[4*int(v):4*int(v)+4] {
		return 0, false
	}
	return byte(v), true
}

// DecodeBytewords reads bytewords in style s (any letter case) and checks and strips the
// CRC-32; the body must hold at least one byte.
func DecodeBytewords(s Style, text string) ([]byte, error) {
	var ws []string
	switch s {
	case Minimal:
		if len(text)%2 != 0 {
			return nil, fmt.Errorf("%w: %d letters is not a whole number of two-letter words", ErrBytewords, len(text))
		}
		ws = make([]string, 0, len(text)/2)
		for i := 0; i < len(text); i += 2 {
			ws = append(ws, text[i:i+2])
		}
	case URI:
		ws = strings.Split(text, "-")
	default:
		ws = strings.Split(text, " ")
	}
	buf := make([]byte, 0, len(ws))
	for i, w := range ws {
		if (s == Minimal) != (len(w) == 2) {
			return nil, fmt.Errorf("%w: word %d %q", ErrBytewords, i+1, w)
		}
		b, ok := lookup(w)
		if !ok {
			return nil, fmt.Errorf("%w: word %d %q is not a byteword", ErrBytewords, i+1, w)
		}
		buf = append(buf, b)
	}
	if len(buf) < 5 {
		return nil, fmt.Errorf("%w: %d bytes is too short for a body and its checksum", ErrBytewords, len(buf))
	}
	body, sum := buf[:len(buf)-4], binary.BigEndian.Uint32(buf[len(buf)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrBytewords)
	}
	return body, nil
}
