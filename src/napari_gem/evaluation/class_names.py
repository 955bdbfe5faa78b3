"""Prompt names of the benchmark classes, as used by the training-free protocol.

One class per line, in label order; a line may list several comma-separated
synonyms, and a class scores the best of its synonyms. These are the name lists
shipped with the SCLIP / NACLIP / ClearCLIP evaluation code (``configs/cls_*.txt``):
the background class of VOC-21 and COCO-Object is described by a list of common
"stuff" words, since CLIP has no notion of "background".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

_VOC_OBJECTS = """\
aeroplane
bicycle
bird
ship
bottle
bus
car
cat
chair
cow
table
dog
horse
motorbike
person, person in shirt, person in jeans, person in dress, person in sweater, person in skirt, \
person in jacket
pottedplant
sheep
sofa
train
television monitor, tv monitor, monitor, television, screen
"""

# Stuff words that stand in for "background" (VOC-21 and COCO-Object).
_BACKGROUND_WORDS = (
    "sky, wall, tree, wood, grass, road, sea, river, mountain, sands, desk, bed, building, "
    "cloud, lamp, door, window, wardrobe, ceiling, shelf, curtain, stair, floor, hill, rail, "
    "fence\n"
)

_CONTEXT_OBJECTS = """\
aeroplane
bag
bed
bedclothes
bench
bicycle
bird
boat
book
bottle
building
bus
cabinet
car
cat
ceiling
chair
cloth
computer
cow
cup
curtain
dog
door
fence
floor
flower
food
grass
ground
horse
keyboard
light
motorbike
mountain
mouse
person
plate
platform
pottedplant
road
rock
sheep
shelves
sidewalk
sign
sky
snow
sofa
table
track
train
tree
truck
tvmonitor
wall
water
window
wood
"""

_COCO_OBJECTS = """\
person, person in shirt, person in jeans, person in dress, person in sweater, person in skirt, \
person in jacket, body
bicycle
car
motorcycle
airplane
bus
train
truck
boat
traffic light
fire hydrant
stop sign
parking meter
bench
bird
cat
dog
horse
sheep
cow
elephant
bear
zebra
giraffe
backpack
umbrella
handbag
tie
suitcase
frisbee
skis
snowboard
sports ball
kite
baseball bat
baseball glove
skateboard
surfboard
tennis racket
bottle
wine glass
cup
fork
knife
spoon
bowl
banana
apple
sandwich
orange
broccoli
carrot
hot dog
pizza
donut
cake
chair
couch
potted plant
bed
dining table
toilet
tv
laptop
mouse
remote
keyboard
cell phone
microwave
oven
toaster
sink
refrigerator
book
clock
vase
scissors
teddy bear
hair drier
toothbrush
"""

_COCO_STUFF = """\
person
bicycle
car
motorcycle
airplane
bus
train
truck
boat
trafficlight
firehydrant
stopsign
parkingmeter
bench
bird
cat
dog
horse
sheep
cow
elephant
bear
zebra
giraffe
backpack
umbrella
handbag
tie
suitcase
frisbee
skis
snowboard
sportsball
kite
baseballbat
baseballglove
skateboard
surfboard
tennisracket
bottle
wineglass
cup
fork
knife
spoon
bowl
banana
apple
sandwich
orange
broccoli
carrot
hotdog
pizza
donut
cake
chair
couch
pottedplant
bed
diningtable
toilet
tv
laptop
mouse
remote
keyboard
cellphone
microwave
oven
toaster
sink
refrigerator
book
clock
vase
scissors
teddybear
hairdrier
toothbrush
banner
blanket
branch
bridge
building-other
bush
cabinet
cage
cardboard
carpet
ceiling-other
ceiling-tile
cloth
clothes
clouds
counter
cupboard
curtain
desk-stuff
dirt
door-stuff
fence
floor-marble
floor-other
floor-stone
floor-tile
floor-wood
flower
fog
food-other
fruit
furniture-other
grass
gravel
ground-other
hill
house
leaves
light
mat
metal
mirror-stuff
moss
mountain
mud
napkin
net
paper
pavement
pillow
plant-other
plastic
platform
playingfield
railing
railroad
river
road
rock
roof
rug
salad
sand
sea
shelf
sky-other
skyscraper
snow
solid-other
stairs
stone
straw
structural-other
table
tent
textile-other
towel
tree
vegetable
wall-brick
wall-concrete
wall-other
wall-panel
wall-stone
wall-tile
wall-wood
water-other
waterdrops
window-blind
window-other
wood
"""

_CITYSCAPES = """\
road
sidewalk
building
wall
fence
pole
trafficlight
trafficsign
vegetation
terrain
sky
person
rider
car
truck
bus
train
motorcycle
bicycle
"""

_ADE20K = """\
wall
building
sky
floor
tree
ceiling
road
bed
windowpane
grass
cabinet
sidewalk
person
earth
door
table
mountain
plant
curtain
chair
car
water
painting
sofa
shelf
house
sea
mirror
rug
field
armchair
seat
fence
desk
rock
wardrobe
lamp
bathtub
railing
cushion
base
box
column
signboard
chestofdrawers
counter
sand
sink
skyscraper
fireplace
refrigerator
grandstand
path
stairs
runway
case
pooltable
pillow
screendoor
stairway
river
bridge
bookcase
blind
coffeetable
toilet
flower
book
hill
bench
countertop
stove
palm
kitchenisland
computer
swivelchair
boat
bar
arcademachine
hovel
bus
towel
light
truck
tower
chandelier
awning
streetlight
booth
televisionreceiver
airplane
dirttrack
apparel
pole
land
bannister
escalator
ottoman
bottle
buffet
poster
stage
van
ship
fountain
conveyerbelt
canopy
washer
plaything
swimmingpool
stool
barrel
basket
waterfall
tent
bag
minibike
cradle
oven
ball
food
step
tank
tradename
microwave
pot
animal
bicycle
lake
dishwasher
screen
blanket
sculpture
hood
sconce
vase
trafficlight
tray
ashcan
fan
pier
crtscreen
plate
monitor
bulletinboard
shower
radiator
glass
clock
flag
"""

# Name-list text per dataset, in the label order of the dataset's ground truth.
CLASS_NAME_TEXTS: dict[str, str] = {
    "voc20": _VOC_OBJECTS,
    "voc21": _BACKGROUND_WORDS + _VOC_OBJECTS,
    "context59": _CONTEXT_OBJECTS,
    "context60": "background\n" + _CONTEXT_OBJECTS,
    "coco-object": _BACKGROUND_WORDS + _COCO_OBJECTS,
    "coco-stuff": _COCO_STUFF,
    "cityscapes": _CITYSCAPES,
    "ade20k": _ADE20K,
}


@dataclass(frozen=True)
class ClassNames:
    """The synonyms of each class, and the flat prompt list the model scores.

    ``prompts[i]`` belongs to class ``prompt_class[i]``; ``display`` holds one
    readable name per class for result tables.
    """

    synonyms: tuple[tuple[str, ...], ...]
    display: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.synonyms)

    @property
    def prompts(self) -> tuple[str, ...]:
        return tuple(name for names in self.synonyms for name in names)

    @property
    def prompt_class(self) -> tuple[int, ...]:
        return tuple(index for index, names in enumerate(self.synonyms) for _ in names)

    def without_synonyms(self, *, background_first: bool = False) -> ClassNames:
        """One name per class (its first; "background" for a background class 0), as in
        ClearCLIP's name files, which carry no synonyms [methods-spec §1.4; the exact
        words of those files are inferred]."""
        names = [(names[0],) for names in self.synonyms]
        if background_first:
            names[0] = ("background",)
        return ClassNames(synonyms=tuple(names), display=self.display)


def parse_class_names(text: str, *, background_first: bool = False) -> ClassNames:
    """Parse a name list: one class per non-empty line, synonyms separated by commas.

    With ``background_first`` the first class is displayed as "background" whatever
    words describe it (its prompts are unchanged).
    """
    synonyms = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        names = tuple(name.strip() for name in line.split(","))
        if any(not name for name in names):
            raise ValueError(f"class-name line {number} has an empty name: {line!r}")
        synonyms.append(names)
    if not synonyms:
        raise ValueError("the class-name list is empty")
    display = [names[0] for names in synonyms]
    if background_first:
        display[0] = "background"
    return ClassNames(synonyms=tuple(synonyms), display=tuple(display))


def dataset_class_names(dataset: str, *, background_first: bool = False) -> ClassNames:
    """The shipped class names of a dataset (see :data:`CLASS_NAME_TEXTS`)."""
    try:
        text = CLASS_NAME_TEXTS[dataset]
    except KeyError:
        known = ", ".join(CLASS_NAME_TEXTS)
        raise ValueError(f"no class names for dataset {dataset!r}; known: {known}") from None
    return parse_class_names(text, background_first=background_first)


def read_class_names(path: str | Path, *, background_first: bool = False) -> ClassNames:
    """Read a name list file in the same format (e.g. a reference repo's ``cls_*.txt``)."""
    return parse_class_names(Path(path).read_text(encoding="utf-8"), background_first=background_first)
