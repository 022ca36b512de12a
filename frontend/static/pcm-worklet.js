// AudioWorklet: the microphone's samples, downsampled to 16 kHz mono 16-bit PCM, posted 100 ms at a time. The
// server needs no audio decoder. Averaging each output sample's span of input is a cheap low-pass filter.
class PcmSender extends AudioWorkletProcessor {
  constructor() {
    super();
    this.ratio = sampleRate / 16000;
    this.position = 0;
    this.batch = new Int16Array(1600);
    this.filled = 0;
    this.carry = [];
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    const samples = this.carry.length ? Float32Array.from([...this.carry, ...channel]) : channel;
    let index = 0;
    while (this.position + this.ratio <= samples.length) {
      const start = Math.floor(this.position);
      const end = Math.min(samples.length, Math.floor(this.position + this.ratio));
      let sum = 0;
      for (let i = start; i < end; i += 1) sum += samples[i];
      const value = Math.max(-1, Math.min(1, sum / Math.max(1, end - start)));
      this.batch[this.filled++] = value < 0 ? value * 0x8000 : value * 0x7fff;
      if (this.filled === this.batch.length) {
        this.port.postMessage(this.batch.buffer.slice(0));
        this.filled = 0;
      }
      this.position += this.ratio;
      index = Math.floor(this.position);
    }
    this.carry = Array.from(samples.slice(index));
    this.position -= index;
    return true;
  }
}

registerProcessor("pcm-sender", PcmSender);
