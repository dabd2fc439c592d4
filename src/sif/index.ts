/**
 * SIF (Singularity Image Format) reader and writer, byte-compatible with the reference (sylabs/sif v2).
 * Layout and writer rules are those of sylabs/sif v2's pkg/sif: packed little-endian structs, a 128-byte header,
 * the descriptor table at 4096, partitions aligned to 4096 and other objects packed; test/singularity/sif.test.ts
 * holds this reader and writer to the reference's own images (test/fixtures/sif).
 *
 * Reading
 *   const img = SifImage.open('alpine.sif');            // read-only; { writable: true } to modify
 *   img.header                                           // SifHeader: launchScript, id, arch, counts, ...
 *   img.descriptors()                                    // used descriptors, in slot (= id) order
 *   img.descriptor(3)                                    // one object by id (throws when unused)
 *   const p = img.primaryPartition();                    // Descriptor | undefined; first PrimSys partition
 *   p.offset, p.size, p.partition!.fsType                // FsType.Squashfs ... absolute file offset/length
 *   img.readObject(p.id)                                 // Buffer with the object's bytes (small objects)
 *   img.copyObjectTo(p.id, 'rootfs.squashfs')            // streams a large object out to a file
 *   img.close()
 *
 * Writing
 *   SifImage.create('out.sif', [
 *     { dataType: DataType.Deffile, data: Buffer.from('Bootstrap: scratch\n') },
 *     { dataType: DataType.Partition, data: { path: 'rootfs.squashfs' },
 *       partition: { fsType: FsType.Squashfs, partType: PartType.PrimSys, arch: 'amd64' } },
 *   ], { deterministic: true }).close();
 *   const w = SifImage.open('out.sif', { writable: true });
 *   w.addObject({ dataType: DataType.GenericJSON, name: 'x.json', data: Buffer.from('{}') });
 *   w.deleteObject(1, { zero: true, compact: true });
 *   w.setPrimaryPartition(4);
 *   w.close();
 *
 * Beside this module: ./mount.ts (mountImage: an image's filesystem as a directory), ./integrity.ts (signImage,
 * verifyImage: DSSE/PGP/legacy signatures), ./siftool-text.ts (siftool's header/list/info text), ./pgp.ts.
 *
 * ObjectInput defaults follow the reference: group 1 (groupId: 0 = no group), no link, partitions aligned
 * to 4096 bytes and everything else packed, timestamps from the image options. Everything is synchronous
 * and works on an fd, so large partitions are never loaded into memory.
 *
 * The code: ./layout.ts (sizes, type codes, the header and descriptor structures), ./codec.ts (those structures
 * to and from bytes), ./image.ts (SifImage, the file). This entry re-exports them.
 */
export * from './layout.js';
export {
  parseDescriptor,
  parseHeader,
  partitionExtra,
  rawGroupId,
  rawLinkedId,
  serializeDescriptor,
  serializeHeader,
} from './codec.js';
export * from './image.js';
